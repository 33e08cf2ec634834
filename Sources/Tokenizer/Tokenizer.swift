// The Tokenizer module. See docs/architecture.md.
