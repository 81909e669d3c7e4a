"""Runtime pieces the three services share: logging, settings, broker factory, lifecycle.

No service logic lives here.
"""

from .kafka import make_broker
from .lifecycle import run, wait_for_stop_signal
from .logging import bind_trace, configure_logging, get_logger
from .resources import NodeResources, open_resources
from .settings import KafkaSettings, NodeSettings

__all__ = [
    "KafkaSettings",
    "NodeResources",
    "NodeSettings",
    "bind_trace",
    "configure_logging",
    "get_logger",
    "make_broker",
    "open_resources",
    "run",
    "wait_for_stop_signal",
]
