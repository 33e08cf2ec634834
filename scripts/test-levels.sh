#!/usr/bin/env bash
# Runs the kernel, golden and quantization tests at each CPU level this machine can run other than the best
# (which `swift test` already used), then builds the portable variant (POSTLENS_PORTABLE=1: no AVX2 in the
# compute modules) and runs the same tests there. Prints which levels ran and which this CPU lacks: a level
# that did not run is never reported as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.build/debug/postlens
filter='KernelsTests|QuantizationTests|EngineGoldenTests'
levels=$("$binary" cpu --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["runnable_levels"]))')
best=${levels##* }
for level in $levels; do
  [ "$level" = "$best" ] && continue
  echo "== tests at POSTLENS_ISA=$level"
  POSTLENS_ISA=$level swift test --skip-build --filter "$filter"
done
echo "== portable build (POSTLENS_PORTABLE=1)"
POSTLENS_PORTABLE=1 swift build --build-tests --scratch-path .build-portable
portable_levels=$(.build-portable/debug/postlens cpu --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["runnable_levels"]))')
for level in $portable_levels; do
  echo "== portable build, tests at POSTLENS_ISA=$level"
  POSTLENS_ISA=$level POSTLENS_PORTABLE=1 swift test --skip-build --scratch-path .build-portable --filter "$filter"
done
ran="$levels (portable build: $portable_levels)"
missing=""
for level in avx2 avx512 amx; do
  case " $levels " in *" $level "*) ;; *) missing="$missing $level" ;; esac
done
echo "== CPU levels tested here: $ran; not run (this CPU lacks them):${missing:- none}"
