// Thin C glue for writing images with libpng and libjpeg (their errors are setjmp/longjmp, so this must be C).
// Used by `postlens analyze --draw` to save annotated images at their original size.
//
// Both functions take interleaved 8-bit RGB rows (width * 3 bytes each, no padding) and return a malloc'ed
// buffer in *out (its length in *size) that the caller releases with pl_encoded_free. They return 0 on success
// or -1 with a NUL-terminated message in err (PL_ERR_LEN bytes, see codecs.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

int pl_png_encode_rgb(const uint8_t *rgb, uint32_t width, uint32_t height, uint8_t **out, size_t *size, char *err);
/// `quality` 1–100 (libjpeg's scale); 4:2:0 chroma subsampling, baseline, optimized Huffman tables.
int pl_jpeg_encode_rgb(const uint8_t *rgb, uint32_t width, uint32_t height, int quality, uint8_t **out, size_t *size,
                       char *err);
void pl_encoded_free(uint8_t *buffer);
