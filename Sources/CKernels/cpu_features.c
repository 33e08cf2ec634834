#include "cpu_features.h"
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t postlens_cpu_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    const uint64_t xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
    const int zmm_state = ymm_state && (xcr0 & 0xE0) == 0xE0; // opmask, ZMM_Hi256, Hi16_ZMM
    const int tile_state = (xcr0 & (3ull << 17)) == (3ull << 17); // XTILECFG, XTILEDATA
    if (!ymm_state) return 0;
    unsigned max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf < 7) return 0;
    unsigned b7, c7, d7, a71 = 0, b71, c71, d71;
    __cpuid_count(7, 0, a, b7, c7, d7);
    if (a >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);
    uint32_t out = 0;
    const int avx2 = (b7 >> 5) & 1;
    if (avx2 && fma && f16c) out |= POSTLENS_CPU_AVX2;
    const int f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1, vnni = (c7 >> 11) & 1;
    if ((out & POSTLENS_CPU_AVX2) && zmm_state && f && dq && bw && vl && vnni) {
        out |= POSTLENS_CPU_AVX512;
        if ((a71 >> 5) & 1) out |= POSTLENS_CPU_AVX512_BF16;
    }
    if ((out & POSTLENS_CPU_AVX2) && ((a71 >> 4) & 1)) out |= POSTLENS_CPU_AVX_VNNI;
    const int amx_bf16 = (d7 >> 22) & 1, amx_tile = (d7 >> 24) & 1, amx_int8 = (d7 >> 25) & 1;
    if ((out & POSTLENS_CPU_AVX512) && tile_state && amx_tile) {
        if (amx_int8) out |= POSTLENS_CPU_AMX_INT8;
        if (amx_bf16) out |= POSTLENS_CPU_AMX_BF16;
    }
    return out;
}

void postlens_cpu_brand(char *out) {
    unsigned regs[12] = {0};
    out[0] = 0;
    if (__get_cpuid_max(0x80000000, 0) < 0x80000004) return;
    for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    memcpy(out, regs, 48);
    out[48] = 0;
}

int postlens_request_amx_permission(void) {
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return errno;
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bitmask) != 0) return errno;
    return (bitmask & (1ul << XFEATURE_XTILEDATA)) ? 0 : EPERM;
}
#else
uint32_t postlens_cpu_features(void) { return 0; }
void postlens_cpu_brand(char *out) { out[0] = 0; }
int postlens_request_amx_permission(void) { return 38; /* ENOSYS */ }
#endif
