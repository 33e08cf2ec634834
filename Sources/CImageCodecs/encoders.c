// PNG and JPEG writers over libpng and libjpeg (see include/encoders.h). Errors longjmp back here and become a
// message; nothing is written to stderr.
#include "encoders.h"
#include "codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static void pl_encode_err(char *err, const char *message) {
    if (err) snprintf(err, PL_ERR_LEN, "%s", message ? message : "unknown error");
}

void pl_encoded_free(uint8_t *buffer) { free(buffer); }

// MARK: - PNG

/// A growing output buffer for png_set_write_fn.
struct pl_png_sink {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
    char message[PL_ERR_LEN];
};

static void pl_png_sink_write(png_structp png, png_bytep bytes, size_t length) {
    struct pl_png_sink *sink = png_get_io_ptr(png);
    if (sink->size + length > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 65536;
        while (capacity < sink->size + length) capacity *= 2;
        uint8_t *grown = realloc(sink->data, capacity);
        if (!grown) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void pl_png_sink_flush(png_structp png) { (void)png; }

static void pl_png_write_error(png_structp png, png_const_charp message) {
    struct pl_png_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sizeof sink->message, "%s", message);
    png_longjmp(png, 1);
}

static void pl_png_write_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

int pl_png_encode_rgb(const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t **out, size_t *size, char *err) {
    *out = NULL;
    *size = 0;
    if (width == 0 || height == 0) { pl_encode_err(err, "cannot write an empty image"); return -1; }
    struct pl_png_sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, pl_png_write_error, pl_png_write_warning);
    if (!png) { pl_encode_err(err, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        pl_encode_err(err, info ? sink.message : "out of memory");
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(rows);
        free(sink.data);
        return -1;
    }
    png_set_write_fn(png, &sink, pl_png_sink_write, pl_png_sink_flush);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    rows = malloc(sizeof(png_bytep) * height);
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(rgb + (size_t)y * width * 3);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *out = sink.data;
    *size = sink.size;
    return 0;
}

// MARK: - JPEG

struct pl_jpeg_write_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void pl_jpeg_write_error_exit(j_common_ptr cinfo) {
    struct pl_jpeg_write_error *e = (struct pl_jpeg_write_error *)cinfo->err;
    e->base.format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void pl_jpeg_write_quiet(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

int pl_jpeg_encode_rgb(const uint8_t *rgb, uint32_t width, uint32_t height, int quality, uint8_t **out, size_t *size,
                       char *err) {
    *out = NULL;
    *size = 0;
    if (width == 0 || height == 0) { pl_encode_err(err, "cannot write an empty image"); return -1; }
    if (width > 65500 || height > 65500) { pl_encode_err(err, "JPEG images are at most 65500 pixels on a side"); return -1; }
    struct jpeg_compress_struct cinfo;
    struct pl_jpeg_write_error error;
    unsigned long length = 0;
    cinfo.err = jpeg_std_error(&error.base);
    error.base.error_exit = pl_jpeg_write_error_exit;
    error.base.emit_message = pl_jpeg_write_quiet;
    if (setjmp(error.jump)) {
        // libjpeg's memory destination may have moved its buffer before the error; freeing a stale pointer would be
        // worse than the leak of this (out-of-memory only) path.
        pl_encode_err(err, error.message);
        jpeg_destroy_compress(&cinfo);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    unsigned char *target = NULL;
    jpeg_mem_dest(&cinfo, &target, &length);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    cinfo.optimize_coding = TRUE;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    // jpeg_mem_dest allocates with malloc, so pl_encoded_free (free) releases it.
    *out = target;
    *size = length;
    return 0;
}
