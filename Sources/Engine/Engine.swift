// The Engine module. See docs/architecture.md.
