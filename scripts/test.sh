#!/usr/bin/env bash
# The README's second command and what CI runs: every test of the project.
#  1. Swift tests: unit, golden against transformers fixtures, CLI and server end to end (`swift test`).
#  2. Python tests that drive the built binary like users do: the official openai SDK against
#     `postlens serve` (tests/live) and a real browser against the web page (tests/browser).
#  3. A fuzz smoke run (libFuzzer, 60 s each) of the JSON reader and the image decoders (scripts/fuzz.sh).
# First installs what the tests need when it is missing (chromium, chromium-driver, Noto CJK fonts, PostgreSQL, nginx;
# the Python packages of tests/requirements.txt) — a no-op when they are there.
# The tests that need PostgreSQL use a throwaway cluster (scripts/test-postgres.sh: initdb in a temporary folder,
# loopback port), started here; POSTLENS_REQUIRE_POSTGRES=1 makes them fail rather than skip if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# Every `python3` from here on — the Python tests and the Swift tests that call it (JSON Schema validation, the
# fake hub) — is the virtual environment's, with the packages of tests/requirements.txt.
export PATH="$PWD/.venv/bin:$PATH"
# Runtime-format weight caches written by the tests go to a scratch folder, not the user's cache.
export POSTLENS_CACHE="$(mktemp -d -t postlens-test-cache-XXXXXX)"
trap 'rm -rf "$POSTLENS_CACHE"' EXIT
# An assignment, so that `set -e` stops here if the cluster cannot start (eval of an empty output would not).
postgres_env=$(scripts/test-postgres.sh start)
eval "$postgres_env"
export POSTLENS_REQUIRE_POSTGRES=1
trap 'scripts/test-postgres.sh stop "$POSTLENS_TEST_PGDATA"; rm -rf "$POSTLENS_CACHE"' EXIT
swift build --build-tests
# The PostgreSQL-backed suites run on their own, after the rest: the driver's tasks share Swift's cooperative thread
# pool (one thread per core) with the tests, and on a 2-core machine two golden tests running a model synchronously
# can hold both threads long enough for every database call to hit its 15 s limit.
swift test --skip-build --skip PostgresStoreTests
swift test --skip-build --filter PostgresStoreTests
# The kernels and the golden/quantization tests again at every other CPU level this machine runs (the run
# above used the best one); levels the CPU lacks are listed as not run.
scripts/test-levels.sh
python3 -m pytest -q tests/build tests/live
POSTLENS_BROWSER_SERVER=real python3 -m pytest -q tests/browser
scripts/fuzz.sh 60
