// The SafeTensors module. See docs/architecture.md.
