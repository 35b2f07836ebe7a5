"""Switchable faults of the local venue, for the reliability suite.

One :class:`VenueFaults` object is shared by the protocol layer, which reads it on every
message and request: switch a fault at start (``LocalVenue(faults=VenueFaults(...))``), at run
time from Python (``venue.faults.update({...})``) or through the venue's unauthenticated
loopback admin route ``POST /sim/faults`` (a JSON object of the same fields). Counted faults
(``skip_depth_messages``, ``rest_error_count``, ``order_answer_count``) apply to that many
messages or requests and then switch themselves off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

__all__ = ["ORDER_ANSWER_FAULTS", "REST_ERRORS", "ROUTES", "OrderAnswerFault", "RestError", "Route", "VenueFaults"]

logger = logging.getLogger(__name__)

Route = Literal["public", "market", "private"]
#: The websocket routes of the 2026 split; the unrouted base counts as ``public``.
ROUTES: tuple[Route, ...] = get_args(Route)

RestError = Literal["429", "418", "503-unavailable", "-1008"]
#: Answers that replace a REST request before the venue acts on it: ``429``/``418`` rate-limit
#: answers, ``503-unavailable`` ("Service Unavailable", definitely not executed), ``-1008``
#: (system throttle on new orders; cancels and reduce-only orders are exempt, as on the venue).
REST_ERRORS: tuple[RestError, ...] = get_args(RestError)

OrderAnswerFault = Literal["delay", "drop", "503-unknown"]
#: What happens to the answer of an order request *after* the venue accepted the order (the
#: outcome is unknown to the client): ``delay`` answers ``order_answer_delay_s`` late, ``drop``
#: closes the connection without an answer, ``503-unknown`` answers HTTP 503 "Unknown error".
ORDER_ANSWER_FAULTS: tuple[OrderAnswerFault, ...] = get_args(OrderAnswerFault)


@dataclass
class VenueFaults:
    """The fault switches. All off by default.

    Attributes
    ----------
    dropped_routes
        Websocket routes that are down: their connections are closed and new ones refused (503).
    stalled_routes
        Websocket routes whose connections stay open but receive nothing (pings still answered).
    skip_depth_messages
        Drop this many upcoming depth messages (per stream), so the next ``pu`` does not match.
    rest_error, rest_error_count, rest_error_paths
        Answer the next ``rest_error_count`` REST requests (to ``rest_error_paths``, or any
        ``/fapi`` path when empty) with ``rest_error`` instead of executing them.
    order_answer, order_answer_count, order_answer_delay_s
        Apply ``order_answer`` to the answers of the next ``order_answer_count`` order
        placements that the venue accepted (``POST /fapi/v1/order`` and ``/fapi/v1/batchOrders``).
    clock_skew_ms
        Added to the venue's clock: server time, event times and the timestamp check.

    Examples
    --------
    >>> faults = VenueFaults()
    >>> faults.update({"skip_depth_messages": 1, "stalled_routes": ["market"]})
    >>> faults.stalled_routes
    frozenset({'market'})
    >>> faults.update({"rest_error": "420"})
    Traceback (most recent call last):
    ...
    ValueError: faults.rest_error: '420' is not one of '429', '418', '503-unavailable', '-1008' (nothing was changed)
    """

    dropped_routes: frozenset[Route] = frozenset()
    stalled_routes: frozenset[Route] = frozenset()
    skip_depth_messages: int = 0
    rest_error: RestError | None = None
    rest_error_count: int = 0
    rest_error_paths: frozenset[str] = field(default_factory=frozenset)
    order_answer: OrderAnswerFault | None = None
    order_answer_count: int = 0
    order_answer_delay_s: float = 5.0
    clock_skew_ms: int = 0

    def __post_init__(self) -> None:
        for name, value in self._checked_changes(asdict(self)).items():
            setattr(self, name, value)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate every change, then apply them all (or none, raising ``ValueError``).

        Lists are accepted where a set is expected (JSON has no sets).
        """
        checked = self._checked_changes(changes)
        for name, value in checked.items():
            setattr(self, name, value)
        if checked:
            logger.info("venue faults now %s", self.active())

    def _checked_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        known = {f.name for f in fields(self)}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(
                    f"faults: unknown switch {name!r}; known: {', '.join(sorted(known))} (nothing was changed)"
                )
            checked[name] = _checked(name, value)
        return checked

    def active(self) -> dict[str, Any]:
        """The switches that differ from the defaults, JSON-ready."""
        defaults = _DEFAULTS.as_json()
        return {name: value for name, value in self.as_json().items() if value != defaults[name]}

    def as_json(self) -> dict[str, Any]:
        """Every switch, JSON-ready (sets as sorted lists)."""
        return {
            f.name: sorted(getattr(self, f.name))
            if isinstance(getattr(self, f.name), frozenset)
            else getattr(self, f.name)
            for f in fields(self)
        }

    def take_depth_skip(self) -> bool:
        """Whether to drop the depth message about to be sent (and count it)."""
        if self.skip_depth_messages > 0:
            self.skip_depth_messages -= 1
            return True
        return False

    def take_rest_error(self, path: str, *, exempt_from_throttle: bool) -> RestError | None:
        """The injected answer for a request to ``path``, if any (and count it)."""
        if self.rest_error is None or self.rest_error_count <= 0:
            return None
        if self.rest_error_paths and path not in self.rest_error_paths:
            return None
        if self.rest_error == "-1008" and exempt_from_throttle:
            return None
        kind = self.rest_error
        self.rest_error_count -= 1
        if self.rest_error_count == 0:
            self.rest_error = None
        return kind

    def take_order_answer_fault(self) -> OrderAnswerFault | None:
        """The fault for the answer of an order the venue has just accepted, if any."""
        if self.order_answer is None or self.order_answer_count <= 0:
            return None
        kind = self.order_answer
        self.order_answer_count -= 1
        if self.order_answer_count == 0:
            self.order_answer = None
        return kind


def _checked(name: str, value: Any) -> Any:
    """``value`` converted to the type of switch ``name``; ``ValueError`` naming both when it does not fit."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"faults.{name}: {value!r} is not {expected} (nothing was changed)")

    if name in ("dropped_routes", "stalled_routes"):
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise bad("a list of routes")
        for route in value:
            if route not in ROUTES:
                raise ValueError(
                    f"faults.{name}: {route!r} is not one of {', '.join(map(repr, ROUTES))} (nothing was changed)"
                )
        return frozenset(value)
    if name == "rest_error_paths":
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise bad("a list of paths")
        if not all(isinstance(path, str) and path.startswith("/") for path in value):
            raise bad("a list of paths starting with /")
        return frozenset(value)
    if name in ("skip_depth_messages", "rest_error_count", "order_answer_count"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("a count (an integer >= 0)")
        return value
    if name == "clock_skew_ms":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer number of milliseconds")
        return value
    if name == "order_answer_delay_s":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad("a number of seconds >= 0")
        return float(value)
    if name == "rest_error":
        if value is not None and value not in REST_ERRORS:
            raise bad("one of " + ", ".join(map(repr, REST_ERRORS)))
        return value
    if name == "order_answer":
        if value is not None and value not in ORDER_ANSWER_FAULTS:
            raise bad("one of " + ", ".join(map(repr, ORDER_ANSWER_FAULTS)))
        return value
    raise AssertionError(f"faults.{name} has no check")  # every field is listed above


_DEFAULTS = VenueFaults()
