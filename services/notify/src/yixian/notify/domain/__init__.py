"""The notify service's domain: rules, templates, and the pace of delivery. No I/O."""
