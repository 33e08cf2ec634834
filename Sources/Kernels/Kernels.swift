// The Kernels module. See docs/architecture.md.
