"""The registry's HTTP API, one router per part (the tags of the OpenAPI document)."""

from . import (
    activities,
    administration,
    feedback,
    members,
    movements,
    operations,
    queries,
    visitors,
)

ROUTERS = (
    operations.router,
    administration.router,
    members.router,
    movements.router,
    activities.router,
    feedback.router,
    queries.router,
    visitors.router,
)
"""In the order the OpenAPI document lists them."""

__all__ = ["ROUTERS"]
