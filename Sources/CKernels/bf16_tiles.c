#include "bf16_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

/// R rows × G groups of 16 lanes: 2R accumulators of the 32 zmm registers (R ≤ 12), two B rows, a broadcast.
#define TILE(R, G)                                                                                      \
    do {                                                                                                \
        __m512 acc0[R], acc1[R];                                                                        \
        _Pragma("clang loop unroll(full)")                                                              \
        for (int i = 0; i < (R); i++) { acc0[i] = _mm512_setzero_ps(); acc1[i] = _mm512_setzero_ps(); } \
        for (int64_t t = 0; t < pairs; t++) {                                                           \
            const __m512bh w0 = (__m512bh)_mm512_loadu_si512(b0 + 16 * t);                             \
            const __m512bh w1 = (G) > 1 ? (__m512bh)_mm512_loadu_si512(b1 + 16 * t) : w0;               \
            _Pragma("clang loop unroll(full)")                                                          \
            for (int i = 0; i < (R); i++) {                                                             \
                const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[i * lda + t]);                    \
                acc0[i] = _mm512_dpbf16_ps(acc0[i], x, w0);                                             \
                if ((G) > 1) acc1[i] = _mm512_dpbf16_ps(acc1[i], x, w1);                                \
            }                                                                                           \
        }                                                                                               \
        _Pragma("clang loop unroll(full)")                                                              \
        for (int i = 0; i < (R); i++) {                                                                 \
            _mm512_storeu_ps(c + i * ldc, acc0[i]);                                                     \
            if ((G) > 1) _mm512_storeu_ps(c + i * ldc + 16, acc1[i]);                                   \
        }                                                                                               \
    } while (0)

BF16_TARGET
void postlens_bf16_tile(int32_t rows, int32_t groups, const uint32_t *a, int64_t lda,
                        const uint32_t *b0, const uint32_t *b1, int64_t pairs, float *c, int64_t ldc) {
    if (rows == 12 && groups == 2) { TILE(12, 2); return; }
    if (rows == 12) { TILE(12, 1); return; }
    // Other row counts (tails): one row at a time.
    for (int32_t r = 0; r < rows; r++) {
        const uint32_t *ar = a + r * lda;
        float *cr = c + r * ldc;
        if (groups == 2) {
            const uint32_t *a_ = ar; float *c_ = cr;
            { const uint32_t *a = a_; float *c = c_; TILE(1, 2); }
        } else {
            const uint32_t *a_ = ar; float *c_ = cr;
            { const uint32_t *a = a_; float *c = c_; TILE(1, 1); }
        }
    }
}
BF16_TARGET
void postlens_bf16_convert(const float *src, uint16_t *dst, int64_t count) {
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512(dst + i, (__m512i)v);
    }
    if (i < count) {
        const __mmask16 lo = (__mmask16)((count - i) >= 16 ? 0xFFFF : ((1u << (count - i)) - 1));
        const __mmask16 hi = (__mmask16)((count - i) <= 16 ? 0 : ((1u << (count - i - 16)) - 1));
        const __m512 a = _mm512_maskz_loadu_ps(lo, src + i), b = _mm512_maskz_loadu_ps(hi, src + i + 16);
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a);
        _mm512_mask_storeu_epi16(dst + i, (__mmask32)(((uint64_t)1 << (count - i)) - 1), v);
    }
}

#else
void postlens_bf16_convert(const float *src, uint16_t *dst, int64_t count) {
    (void)src; (void)dst; (void)count;
    __builtin_trap();
}

void postlens_bf16_tile(int32_t rows, int32_t groups, const uint32_t *a, int64_t lda,
                        const uint32_t *b0, const uint32_t *b1, int64_t pairs, float *c, int64_t ldc) {
    (void)rows; (void)groups; (void)a; (void)lda; (void)b0; (void)b1; (void)pairs; (void)c; (void)ldc;
    __builtin_trap();
}
#endif
