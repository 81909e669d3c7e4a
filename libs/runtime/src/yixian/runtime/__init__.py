"""Runtime pieces the three services share: logging, settings, the Kafka facade, lifecycle.

No service logic lives here.
"""

from .kafka import kafka_reachable, make_broker
from .lifecycle import run, wait_for_stop_signal
from .logging import bind_trace, configure_logging, get_logger
from .resources import (
    DbConnection,
    NodeResources,
    create_pool,
    init_connection,
    node_pool,
    open_resources,
)
from .settings import DeadlineSettings, KafkaSettings, NodeSettings

__all__ = [
    "DbConnection",
    "DeadlineSettings",
    "KafkaSettings",
    "NodeResources",
    "NodeSettings",
    "bind_trace",
    "configure_logging",
    "create_pool",
    "get_logger",
    "init_connection",
    "kafka_reachable",
    "make_broker",
    "node_pool",
    "open_resources",
    "run",
    "wait_for_stop_signal",
]
