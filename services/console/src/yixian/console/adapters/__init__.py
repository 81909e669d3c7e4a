"""The console's ends: its sessions (in memory), the node's services over HTTP with the
signed-in key, and the operator's work done in-process with the node's credentials."""
