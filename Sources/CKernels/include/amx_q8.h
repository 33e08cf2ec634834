// AMX-INT8 tile kernel of the Q8 products (C: AMX intrinsics are macros over tile registers, which
// Swift cannot import). Called by Kernels/VNNIProduct.swift only at the amx level, after
// postlens_request_amx_permission() succeeded. Its twin is QuantizedGEMM.quadPortable (same operands).
#pragma once
#include <stdint.h>

/// 16 activation rows × `panels` (1 or 2) weight panels of 16 features, blocks [block_start, block_end):
/// c[r·ldc + 16p + f] += Σ_b (Σ_k a·w + comp) · ws[p][b][f] · a_scales[b·stride + r].
/// Operands as in Q8Layout.quads / QuadActivations: row r of block b at a + (b·stride + r)·32 (signed),
/// panel p's block b at w_p + 512·b (8 rows of 64 bytes, unsigned w + 128), scales ws_p + 16·b.
void postlens_amx_q8_tile(const int8_t *a, const float *a_scales, const int32_t *a_comp, int32_t stride,
                          const uint8_t *w0, const float *ws0, const uint8_t *w1, const float *ws1, int32_t panels,
                          int32_t block_start, int32_t block_end, float *c, int32_t ldc);

/// `iterations` × 4 `tdpbsud` (16×16×64 int8 multiply-adds each) on resident tiles: the AMX-INT8 issue
/// limit `postlens bench` compares the amx level with. Returns a value that depends on the results.
int32_t postlens_amx_peak_loop(int64_t iterations);
