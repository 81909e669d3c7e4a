"""entrypoints of the registry service."""
