"""Where a member's dues are paid: each month, at which host (and with which payment), from
the host groups of the member's movements this node holds (the origin reads its replicas)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .movement import Movement


def dues_paid_where(movements: Iterable[Movement]) -> dict[str, Any]:
    """``months``: each month recorded paid, in order, with every host that recorded it
    (``payment``: the payment covering it, absent for a month confirmed without an amount);
    ``payments``: every payment with its host and movement, oldest month first."""
    months: dict[str, list[dict[str, Any]]] = {}
    payments: list[dict[str, Any]] = []
    for movement in movements:
        host = movement.host_group
        if host is None:
            continue
        where = {"host": movement.host, "movement_id": str(movement.movement_id)}
        covering: dict[str, dict[str, Any]] = {}
        for payment in host.dues:
            paid = {**where, **payment.model_dump(mode="json", exclude_none=True)}
            payments.append(paid)
            for month in payment.period.months:
                covering[month] = paid
        for month in host.dues_paid:
            entry: dict[str, Any] = dict(where)
            if month in covering:
                entry["payment"] = {k: v for k, v in covering[month].items() if k not in where}
            months.setdefault(month, []).append(entry)
    payments.sort(key=lambda p: (p["period"]["from_month"], p["host"]))
    return {
        "months": [{"month": month, "paid_at": months[month]} for month in sorted(months)],
        "payments": payments,
    }
