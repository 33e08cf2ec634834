#!/usr/bin/env bash
# The README's second command and what CI runs: every test of the project.
# Swift tests (unit, golden against transformers fixtures, CLI end to end), then the Python live
# tests that drive the built binary with real clients when tests/live exists.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test
if [ -d tests/live ] && ls tests/live/test_*.py >/dev/null 2>&1; then
  python3 -m pytest -q tests/live
fi
