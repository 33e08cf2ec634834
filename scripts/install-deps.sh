#!/usr/bin/env bash
# Installs what PostLens needs on Debian 12 (uses sudo when not root):
#   scripts/install-deps.sh          OpenBLAS and the image codecs, to build and run
#   scripts/install-deps.sh --test   also what the tests use: chromium + chromium-driver + Noto CJK fonts for the
#                                    browser tests, PostgreSQL and nginx for the shared-database tests (each test
#                                    starts its own throwaway server on loopback), and a Python virtual environment
#                                    `.venv` with the packages of tests/requirements.txt (Debian 12's system Python
#                                    refuses `pip install`, PEP 668)
# The Swift toolchain (6.2 or newer) must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libopenblas-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libsqlite3-dev pkg-config)
if [ "${1:-}" = "--test" ]; then packages+=(chromium chromium-driver fonts-noto-cjk postgresql nginx python3-venv); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--test" ]; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv
  .venv/bin/python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
command -v swift >/dev/null || { echo "Swift 6.2+ is required: https://www.swift.org/install/linux/" >&2; exit 1; }
