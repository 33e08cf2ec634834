// The Tensors module. See docs/architecture.md.
