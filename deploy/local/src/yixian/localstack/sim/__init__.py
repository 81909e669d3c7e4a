"""The network simulation (``make sim``): a day of movements between many jurisdictions on
node hosts, compressed into minutes, with faults; then every pair of replicas is compared
and every notice counted, and the figures are printed.

- :mod:`.plan`: what will happen, from a seed (nodes, hosts, partner graph, each member's
  day, the faults); pure, unit-tested.
- :mod:`.world`: the nodes set up as an operator does (``yixian host add``, ``partner link``).
- :mod:`.traffic`: the day's steps through the nodes' HTTP APIs.
- :mod:`.faults`: a partner offline, ``kill -9``, the broker and the database restarted.
- :mod:`.verdict` and :mod:`.resources`: the checks and the figures.
"""

from .plan import FaultKind
from .run import Options, Result, simulate

__all__ = ["FaultKind", "Options", "Result", "simulate"]
