// Thin C glue over libjpeg(-turbo) and libpng, whose error handling is setjmp/longjmp and so cannot be
// driven from Swift. Everything else (format sniffing, EXIF, colour conversion, compositing, WebP, GIF, BMP)
// lives in the Imaging module.
//
// Protocol, identical for both codecs:
//   1. pl_*_open(data, size, &handle, err)  reads the header only; the handle's width/height/channels are set.
//   2. the caller checks the pixel limit and allocates height * width * channels bytes;
//   3. pl_*_read(handle, buffer, err)     decodes into the buffer (row-major, interleaved);
//   4. pl_*_close(handle)                 always, after a successful open.
// Every function returns 0 on success or -1 with a NUL-terminated message in err (PL_ERR_LEN bytes).
#pragma once
#include <stddef.h>
#include <stdint.h>

#define PL_ERR_LEN 200

/// JPEG output colour models.
enum { PL_JPEG_RGB = 0, PL_JPEG_CMYK = 1 };

typedef struct pl_jpeg pl_jpeg;

typedef struct {
    uint32_t width;
    uint32_t height;
    /// 3 for PL_JPEG_RGB (grayscale and YCbCr are converted to RGB by libjpeg), 4 for PL_JPEG_CMYK.
    int channels;
    int color_model;
    /// 1 when an Adobe APP14 marker was present: CMYK samples are then stored inverted (Photoshop convention).
    int adobe_inverted;
} pl_jpeg_info;

int pl_jpeg_open(const uint8_t *data, size_t size, pl_jpeg **handle, pl_jpeg_info *info, char *err);
/// Optional, between open and read: decode at 1/denominator size (1, 2, 4 or 8) with libjpeg's scaled IDCT, which
/// never materialises the full-size image. Sets the output size the buffer must then hold.
int pl_jpeg_set_scale(pl_jpeg *handle, int denominator, uint32_t *width, uint32_t *height, char *err);
int pl_jpeg_read(pl_jpeg *handle, uint8_t *pixels, char *err);
void pl_jpeg_close(pl_jpeg *handle);

typedef struct pl_png pl_png;

typedef struct {
    uint32_t width;
    uint32_t height;
    /// After expansion: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Palette images are expanded to RGB(A);
    /// tRNS becomes an alpha channel; bit depths below 8 are scaled up; 16-bit samples keep the high byte.
    int channels;
    int bit_depth;
    int color_type;
    int interlaced;
} pl_png_info;

int pl_png_open(const uint8_t *data, size_t size, pl_png **handle, pl_png_info *info, char *err);
int pl_png_read(pl_png *handle, uint8_t *pixels, char *err);
void pl_png_close(pl_png *handle);

// libwebp and giflib need no setjmp glue: the Imaging module calls them directly through these headers.
#include <gif_lib.h>
#include <webp/decode.h>
#include <webp/demux.h>

// Writing PNG and JPEG (annotated images): see encoders.h.
#include "encoders.h"
