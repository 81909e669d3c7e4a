"""entrypoints of the notify service."""
