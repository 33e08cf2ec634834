#!/usr/bin/env bash
# Installs the system libraries PostLens links against (Debian 12): OpenBLAS and the image codecs.
# Needs root (uses sudo when not root). The Swift toolchain (6.2 or newer) must already be installed.
set -euo pipefail
packages=(libopenblas-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libsqlite3-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v swift >/dev/null || { echo "Swift 6.2+ is required: https://www.swift.org/install/linux/" >&2; exit 1; }
