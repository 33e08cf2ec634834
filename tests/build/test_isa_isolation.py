"""The built binary runs on any x86-64 with AVX2: AVX-512 code may only sit in the functions `KernelDispatch`
calls after it checked the CPU (the KernelsAVX512 module, the C AMX kernels).

The hazard this guards against: a module compiled with `-target-cpu icelake-server` emits its own copies of
generic Swift code (stdlib specializations, closures); if the linker kept such a copy for the whole program,
an AVX2-only CPU would die with SIGILL in ordinary code. Reads the disassembly of the built `postlens`.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("POSTLENS_BINARY", REPO / ".build" / "debug" / "postlens"))

# Registers only AVX-512 has: zmm, ymm/xmm 16–31, opmasks; and embedded broadcasts.
AVX512 = re.compile(r"%zmm\d|%[xy]mm(1[6-9]|2\d|3[01])\b|%k[1-7]\b|\{1to\d+\}")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
ALLOWED_OURS = ("13KernelsAVX512", "14KernelsSIMD512", "postlens_amx_", "postlens_bf16_")


def functions_with_avx512(binary: Path) -> dict:
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True, check=True).stdout
    found, current = {}, None
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            current = m.group(1)
            continue
        if current and AVX512.search(line):
            found.setdefault(current, line.strip())
    return found


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 only")
def test_avx512_code_only_behind_the_dispatch():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` first", pytrace=False)
    assert shutil.which("objdump"), "objdump (binutils) is needed"
    found = functions_with_avx512(BINARY)
    # The AVX-512 kernels must be there (else this test would pass vacuously).
    assert any("13KernelsAVX512" in name for name in found), "no AVX-512 code found in KernelsAVX512"
    # Swift symbols ($s…) and our C kernels with AVX-512 must belong to the dispatched modules; other C code
    # (BoringSSL's runtime-dispatched assembly) is not ours to judge.
    leaks = {name: line for name, line in found.items()
             if (name.startswith("$s") or name.startswith("postlens")) and not any(a in name for a in ALLOWED_OURS)}
    assert not leaks, "AVX-512 instructions outside the dispatched kernels:\n" + "\n".join(
        f"{name}: {line}" for name, line in sorted(leaks.items())[:20])


# Generic standard-library SIMD code, and our own vector words (`KernelsSIMD`, `KernelsSIMD512`) when a build
# failed to inline them (a word called out of line costs more than the instruction it wraps).
GENERIC_SIMD_CALL = re.compile(r"call\s+\w+ <(\$s(s12pointwiseM|s5SIMD[0-9]+V|s4SIMDP|s25FloatingPointRoundingRule|11KernelsSIMD|14KernelsSIMD512)[^>]*)>")


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 only")
def test_kernels_never_call_generic_simd_code():
    """The vector words must compile to instructions: the standard library's generic `pointwiseMax` or
    rounding conversions, when not inlined, are an out-of-line call per vector (once made the vector exp, and
    so softmax, GELU and SiLU, several times slower without any test failing), and so are our own words when
    a debug build compiles file by file (once made the AVX-512 attention tiles 50× slower in `swift test`)."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` first", pytrace=False)
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(BINARY)], capture_output=True, text=True, check=True).stdout
    offenders, current = set(), None
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            current = m.group(1)
            continue
        call = GENERIC_SIMD_CALL.search(line)
        # The instruction probes of `postlens bench` are loops of their own, called on purpose.
        if call and "PeakLoop" not in call.group(1) and current and ("7Kernels" in current or "11KernelsSIMD" in current or "13KernelsAVX512" in current or "14KernelsSIMD512" in current):
            offenders.add(f"{current} calls {call.group(1)}")
    assert not offenders, "kernels call generic SIMD code:\n" + "\n".join(sorted(offenders)[:20])
