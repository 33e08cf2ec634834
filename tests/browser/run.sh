#!/usr/bin/env bash
# Installs what the web UI's browser tests need (Debian 12: chromium, chromium-driver, Noto CJK fonts for the
# Chinese screenshots; selenium from PyPI) and runs them. Extra arguments go to pytest.
# POSTLENS_BROWSER_SERVER=auto|real|stub picks the server (see conftest.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(chromium chromium-driver fonts-noto-cjk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
exec python3 -m pytest -q tests/browser "$@"
