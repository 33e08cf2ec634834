#!/usr/bin/env bash
# The README's first command: install system packages, build in release, then run the main job.
#   scripts/quickstart.sh [postlens arguments...]
# Without arguments it starts the server (`postlens serve`) on http://127.0.0.1:8080 with the model
# given by POSTLENS_MODEL: a model folder, or a Hugging Face repo id (default Qwen/Qwen3-VL-2B-Instruct,
# downloaded into the Hugging Face cache on first run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product postlens
if [ $# -gt 0 ]; then
  exec .build/release/postlens "$@"
fi
model="${POSTLENS_MODEL:-Qwen/Qwen3-VL-2B-Instruct}"
exec .build/release/postlens serve --model "$model" --host "${POSTLENS_HOST:-127.0.0.1}" --port "${POSTLENS_PORT:-8080}"
