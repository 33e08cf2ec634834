// The Imaging module. See docs/architecture.md.
