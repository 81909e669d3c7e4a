"""domain of the sync service."""
