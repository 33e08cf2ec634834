// AVX512-BF16 microkernel of many-query attention (C: Swift cannot import the __bf16 vector intrinsics).
// Called by Kernels/TiledAttention.swift at the avx512 and amx levels on CPUs with AVX512_BF16, for the
// quantized formats only (the F32 format keeps F32 attention, the reference the golden tests check).
#pragma once
#include <stdint.h>

/// `c[i·ldc + 16g + l] = Σ_{t < pairs} a[i·lda + t] ⊙ b_g[16t + l]` for `rows` (1…12) rows `i` and `groups`
/// (1 or 2) groups `g` of 16 lanes `l`, where each uint32 holds two bf16 values and `⊙` is their 2-term dot
/// product in F32 (`vdpbf16ps`: 32 multiply-adds per instruction, twice an F32 FMA). `a` rows are broadcast
/// (queries or probabilities, pairs along the summed dimension); `b0`/`b1` are packed `[pairs][16 lanes]`.
void postlens_bf16_tile(int32_t rows, int32_t groups, const uint32_t *a, int64_t lda,
                        const uint32_t *b0, const uint32_t *b1, int64_t pairs, float *c, int64_t ldc);

/// `dst[i]` = BF16 bits of `src[i]`, rounded to nearest even (`vcvtne2ps2bf16`, 32 values per instruction),
/// for `count` values. Probabilities and queries become the broadcast operand of `postlens_bf16_tile` this way.
void postlens_bf16_convert(const float *src, uint16_t *dst, int64_t count);
