"""adapters of the sync service."""
