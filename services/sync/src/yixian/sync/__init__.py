"""A node's sync service: applies what partner nodes send to the node's replicas."""
