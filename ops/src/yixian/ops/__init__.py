"""The operator's tools for a Yixian node, behind the ``yixian`` command."""
