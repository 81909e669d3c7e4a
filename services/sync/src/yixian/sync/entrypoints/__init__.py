"""entrypoints of the sync service."""
