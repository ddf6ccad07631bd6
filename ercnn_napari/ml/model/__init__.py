"""The network: architecture, weights files, and the shared per-observation steps."""
