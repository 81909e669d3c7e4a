"""A node's notify service: notices to members and secretaries, once each."""
