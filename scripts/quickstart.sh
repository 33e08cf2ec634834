#!/usr/bin/env bash
# The README's first command: install system packages, build in release, then run the main job.
#   scripts/quickstart.sh [postlens arguments...]
# Without arguments it answers a question about a sample image with the model given by
# POSTLENS_MODEL (a model folder; default: Qwen/Qwen3-VL-2B-Instruct in the Hugging Face cache).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product postlens
if [ $# -gt 0 ]; then
  exec .build/release/postlens "$@"
fi
model="${POSTLENS_MODEL:-Qwen/Qwen3-VL-2B-Instruct}"
exec .build/release/postlens ask --model "$model" --image Tests/Fixtures/images/odd_333x217.jpg "What does this image show?"
