"""``python -m yixian.ops``: the same as the ``yixian`` command."""

from .cli import main

main()
