"""service_layer of the notify service."""
