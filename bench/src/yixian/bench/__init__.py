"""``make bench``: the figures that matter, each beside a same-run ceiling or peer."""
