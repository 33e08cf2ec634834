// The Qwen3VL module. See docs/architecture.md.
