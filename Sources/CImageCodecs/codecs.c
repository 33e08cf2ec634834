// setjmp/longjmp glue for libjpeg and libpng. See include/codecs.h for the protocol.
#include "codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void pl_set_err(char *err, const char *prefix, const char *message) {
    if (err) snprintf(err, PL_ERR_LEN, "%s%s", prefix, message ? message : "unknown error");
}

// MARK: - JPEG

struct pl_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

struct pl_jpeg {
    struct jpeg_decompress_struct cinfo;
    struct pl_jpeg_error error;
};

static void pl_jpeg_error_exit(j_common_ptr cinfo) {
    struct pl_jpeg_error *e = (struct pl_jpeg_error *)cinfo->err;
    e->base.format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

// libjpeg reports a premature end of data as a warning and fills the missing part with gray. A truncated file
// must be an error here (as in PIL), so that warning aborts; other warnings (e.g. extraneous bytes before a
// marker) are tolerated, as PIL tolerates them.
static void pl_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) pl_jpeg_error_exit(cinfo);
}

int pl_jpeg_open(const uint8_t *data, size_t size, pl_jpeg **handle, pl_jpeg_info *info, char *err) {
    *handle = NULL;
    pl_jpeg *h = calloc(1, sizeof(pl_jpeg));
    if (!h) { pl_set_err(err, "", "out of memory"); return -1; }
    h->cinfo.err = jpeg_std_error(&h->error.base);
    h->error.base.error_exit = pl_jpeg_error_exit;
    h->error.base.emit_message = pl_jpeg_emit_message;
    if (setjmp(h->error.jump)) {
        pl_set_err(err, "", h->error.message);
        jpeg_destroy_decompress(&h->cinfo);
        free(h);
        return -1;
    }
    jpeg_create_decompress(&h->cinfo);
    jpeg_mem_src(&h->cinfo, data, (unsigned long)size);
    jpeg_read_header(&h->cinfo, TRUE);
    J_COLOR_SPACE cs = h->cinfo.jpeg_color_space;
    if (cs == JCS_CMYK || cs == JCS_YCCK) {
        h->cinfo.out_color_space = JCS_CMYK;
        info->color_model = PL_JPEG_CMYK;
        info->channels = 4;
    } else {
        h->cinfo.out_color_space = JCS_RGB;  // grayscale is replicated by libjpeg
        info->color_model = PL_JPEG_RGB;
        info->channels = 3;
    }
    info->width = h->cinfo.image_width;
    info->height = h->cinfo.image_height;
    info->adobe_inverted = h->cinfo.saw_Adobe_marker ? 1 : 0;
    *handle = h;
    return 0;
}

int pl_jpeg_set_scale(pl_jpeg *h, int denominator, uint32_t *width, uint32_t *height, char *err) {
    if (setjmp(h->error.jump)) {
        pl_set_err(err, "", h->error.message);
        return -1;
    }
    h->cinfo.scale_num = 1;
    h->cinfo.scale_denom = (unsigned int)denominator;
    jpeg_calc_output_dimensions(&h->cinfo);
    *width = h->cinfo.output_width;
    *height = h->cinfo.output_height;
    return 0;
}

int pl_jpeg_read(pl_jpeg *h, uint8_t *pixels, char *err) {
    if (setjmp(h->error.jump)) {
        pl_set_err(err, "", h->error.message);
        return -1;
    }
    jpeg_start_decompress(&h->cinfo);
    size_t stride = (size_t)h->cinfo.output_width * (size_t)h->cinfo.output_components;
    while (h->cinfo.output_scanline < h->cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)h->cinfo.output_scanline * stride;
        jpeg_read_scanlines(&h->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&h->cinfo);
    return 0;
}

void pl_jpeg_close(pl_jpeg *h) {
    if (!h) return;
    jpeg_destroy_decompress(&h->cinfo);
    free(h);
}

// MARK: - PNG

struct pl_png {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t offset;
    char message[PL_ERR_LEN];
    int channels;
};

static void pl_png_error(png_structp png, png_const_charp message) {
    struct pl_png *h = png_get_error_ptr(png);
    snprintf(h->message, sizeof h->message, "%s", message);
    png_longjmp(png, 1);
}

static void pl_png_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

static void pl_png_read_data(png_structp png, png_bytep out, size_t length) {
    struct pl_png *h = png_get_io_ptr(png);
    if (length > h->size - h->offset) png_error(png, "unexpected end of data (truncated file)");
    memcpy(out, h->data + h->offset, length);
    h->offset += length;
}

int pl_png_open(const uint8_t *data, size_t size, pl_png **handle, pl_png_info *info, char *err) {
    *handle = NULL;
    pl_png *h = calloc(1, sizeof(pl_png));
    if (!h) { pl_set_err(err, "", "out of memory"); return -1; }
    h->data = data;
    h->size = size;
    h->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, h, pl_png_error, pl_png_warning);
    if (!h->png) { free(h); pl_set_err(err, "", "out of memory"); return -1; }
    h->info = png_create_info_struct(h->png);
    if (!h->info) { png_destroy_read_struct(&h->png, NULL, NULL); free(h); pl_set_err(err, "", "out of memory"); return -1; }
    if (setjmp(png_jmpbuf(h->png))) {
        pl_set_err(err, "", h->message);
        png_destroy_read_struct(&h->png, &h->info, NULL);
        free(h);
        return -1;
    }
    png_set_read_fn(h->png, h, pl_png_read_data);
    // The caller enforces its own pixel limit from these header values; lift libpng's 1e6 x 1e6 default.
    png_set_user_limits(h->png, 0x7fffffff, 0x7fffffff);
    png_read_info(h->png, h->info);

    int color_type = png_get_color_type(h->png, h->info);
    int bit_depth = png_get_bit_depth(h->png, h->info);
    info->width = png_get_image_width(h->png, h->info);
    info->height = png_get_image_height(h->png, h->info);
    info->bit_depth = bit_depth;
    info->color_type = color_type;
    info->interlaced = png_get_interlace_type(h->png, h->info) != PNG_INTERLACE_NONE;

    // No gamma or colour-management transforms: PIL ignores gAMA/iCCP/cHRM, and so do we.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(h->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(h->png);
    if (png_get_valid(h->png, h->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(h->png);
    if (bit_depth == 16) png_set_strip_16(h->png);  // keep the high byte, as PIL does
    if (info->interlaced) png_set_interlace_handling(h->png);
    png_read_update_info(h->png, h->info);
    h->channels = png_get_channels(h->png, h->info);
    if (png_get_bit_depth(h->png, h->info) != 8 || h->channels < 1 || h->channels > 4) {
        pl_set_err(err, "", "unexpected PNG sample layout after expansion");
        png_destroy_read_struct(&h->png, &h->info, NULL);
        free(h);
        return -1;
    }
    info->channels = h->channels;
    *handle = h;
    return 0;
}

int pl_png_read(pl_png *h, uint8_t *pixels, char *err) {
    uint32_t height = png_get_image_height(h->png, h->info);
    size_t stride = png_get_rowbytes(h->png, h->info);
    png_bytep *rows = malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!rows) { pl_set_err(err, "", "out of memory"); return -1; }
    for (uint32_t y = 0; y < height; y++) rows[y] = pixels + (size_t)y * stride;
    if (setjmp(png_jmpbuf(h->png))) {
        free(rows);
        pl_set_err(err, "", h->message);
        return -1;
    }
    png_read_image(h->png, rows);
    free(rows);
    return 0;
}

void pl_png_close(pl_png *h) {
    if (!h) return;
    png_destroy_read_struct(&h->png, &h->info, NULL);
    free(h);
}
