"""service_layer of the sync service."""
