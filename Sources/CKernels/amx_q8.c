#include "amx_q8.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq")))

/// Tile palette 1: tiles 0, 1 hold the int32 sums of panels 0 and 1 (16 rows × 16 lanes); tile 2 the
/// 16 activation rows of one block (16 × 32 bytes); tiles 3, 4 the two panels' block (8 rows × 64 bytes).
struct tile_config {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

AMX_TARGET
static void configure(void) {
    struct tile_config cfg __attribute__((aligned(64)));
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg.rows[0] = 16; cfg.colsb[0] = 64;
    cfg.rows[1] = 16; cfg.colsb[1] = 64;
    cfg.rows[2] = 16; cfg.colsb[2] = 32;
    cfg.rows[3] = 8; cfg.colsb[3] = 64;
    cfg.rows[4] = 8; cfg.colsb[4] = 64;
    _tile_loadconfig(&cfg);
}

/// Adds one panel's block sums (16 rows × 16 int32 at `sums`) into `c`, with the bias compensation and scales.
AMX_TARGET
static inline void fold(const int32_t *sums, const int32_t *comp, const float *xs, const float *ws, float *c, int32_t ldc) {
    const __m512 w = _mm512_loadu_ps(ws);
    for (int r = 0; r < 16; r++) {
        __m512i acc = _mm512_add_epi32(_mm512_loadu_si512(sums + 16 * r), _mm512_set1_epi32(comp[r]));
        float *cp = c + (long)r * ldc;
        __m512 scale = _mm512_mul_ps(w, _mm512_set1_ps(xs[r]));
        _mm512_storeu_ps(cp, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, _mm512_loadu_ps(cp)));
    }
}

AMX_TARGET
void postlens_amx_q8_tile(const int8_t *a, const float *a_scales, const int32_t *a_comp, int32_t stride,
                          const uint8_t *w0, const float *ws0, const uint8_t *w1, const float *ws1, int32_t panels,
                          int32_t block_start, int32_t block_end, float *c, int32_t ldc) {
    // Loaded on every call: cheap next to a pass of blocks, and safe if anything else on this thread
    // configured the tiles differently in between.
    configure();
    int32_t sums[2][16 * 16] __attribute__((aligned(64)));
    for (int32_t b = block_start; b < block_end; b++) {
        const long row0 = (long)b * stride;
        _tile_zero(0);
        _tile_loadd(2, a + row0 * 32, 32);
        _tile_loadd(3, w0 + (long)b * 512, 64);
        _tile_dpbsud(0, 2, 3);
        _tile_stored(0, sums[0], 64);
        if (panels > 1) {
            _tile_zero(1);
            _tile_loadd(4, w1 + (long)b * 512, 64);
            _tile_dpbsud(1, 2, 4);
            _tile_stored(1, sums[1], 64);
        }
        fold(sums[0], a_comp + row0, a_scales + row0, ws0 + 16 * b, c, ldc);
        if (panels > 1) fold(sums[1], a_comp + row0, a_scales + row0, ws1 + 16 * b, c + 16, ldc);
    }
}
AMX_TARGET
int32_t postlens_amx_peak_loop(int64_t iterations) {
    struct tile_config cfg __attribute__((aligned(64)));
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    int8_t a[16 * 64] __attribute__((aligned(64)));
    int32_t out[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 64; i++) a[i] = (int8_t)(i * 7);
    _tile_loadd(4, a, 64); _tile_loadd(5, a, 64); _tile_loadd(6, a, 64); _tile_loadd(7, a, 64);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (int64_t i = 0; i < iterations; i++) {
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 4, 7);
        _tile_dpbsud(2, 5, 6);
        _tile_dpbsud(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0] + out[255];
}

#else
int32_t postlens_amx_peak_loop(int64_t iterations) { (void)iterations; __builtin_trap(); }

void postlens_amx_q8_tile(const int8_t *a, const float *a_scales, const int32_t *a_comp, int32_t stride,
                          const uint8_t *w0, const float *ws0, const uint8_t *w1, const float *ws1, int32_t panels,
                          int32_t block_start, int32_t block_end, float *c, int32_t ldc) {
    (void)a; (void)a_scales; (void)a_comp; (void)stride; (void)w0; (void)ws0; (void)w1; (void)ws1; (void)panels;
    (void)block_start; (void)block_end; (void)c; (void)ldc;
    __builtin_trap(); // never dispatched off x86-64
}
#endif
