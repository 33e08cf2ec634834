// What this CPU and OS allow, read with cpuid and xgetbv, and the Linux permission AMX tile data needs.
// C because Swift cannot issue cpuid/xgetbv or call the variadic syscall(2).
#pragma once
#include <stdint.h>

/// Feature bits of `postlens_cpu_features`. A bit is set only when the CPU reports the feature AND the OS
/// saves the registers it needs (XCR0), so a set bit means the instructions can run.
enum {
    POSTLENS_CPU_AVX2 = 1u << 0,        // AVX2 + FMA + F16C, OS saves YMM
    POSTLENS_CPU_AVX512 = 1u << 1,      // AVX-512 F + BW + VL + DQ + VNNI, OS saves ZMM and opmasks
    POSTLENS_CPU_AVX512_BF16 = 1u << 2, // AVX512_BF16 (vdpbf16ps)
    POSTLENS_CPU_AVX_VNNI = 1u << 3,    // AVX-VNNI (VEX-encoded vpdpbusd on ymm)
    POSTLENS_CPU_AMX_INT8 = 1u << 4,    // AMX-TILE + AMX-INT8, OS enables tile state (XCR0 bits 17, 18)
    POSTLENS_CPU_AMX_BF16 = 1u << 5,    // AMX-BF16
};

/// The feature bits above.
uint32_t postlens_cpu_features(void);

/// The CPU's brand string (up to 48 characters) into `out` (at least 49 bytes).
void postlens_cpu_brand(char *out);

/// Asks Linux for permission to use AMX tile data in this process (arch_prctl ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA). Process-wide, idempotent. Returns 0 on success, else the errno.
int postlens_request_amx_permission(void);
