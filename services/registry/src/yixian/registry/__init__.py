"""A node's registry: its HTTP API and the source of truth for what the node decides."""
