#!/usr/bin/env bash
# The README's second command and what CI runs: every test of the project.
#  1. Swift tests: unit, golden against transformers fixtures, CLI and server end to end (`swift test`).
#  2. Python tests that drive the built binary like users do: the official openai SDK against
#     `postlens serve` (tests/live) and a real browser against the web page (tests/browser).
# Test-only packages: `scripts/install-deps.sh --test` (CI runs it first).
set -euo pipefail
cd "$(dirname "$0")/.."
# Runtime-format weight caches written by the tests go to a scratch folder, not the user's cache.
export POSTLENS_CACHE="$(mktemp -d -t postlens-test-cache-XXXXXX)"
trap 'rm -rf "$POSTLENS_CACHE"' EXIT
swift build --build-tests
swift test
python3 -m pytest -q tests/live
POSTLENS_BROWSER_SERVER=real python3 -m pytest -q tests/browser
