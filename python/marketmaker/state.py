"""The shared state, with the original bot's ``add_clients``: secrets stay on the Python side."""

from __future__ import annotations

from marketmaker import _core
from marketmaker.credentials import ApiCredentials

__all__ = ["SharedState"]


class SharedState(_core.SharedState):
    """The shared state of one exchange (see :class:`marketmaker._core.SharedState`).

    ``add_clients(key, secret, symbol)`` keeps the credentials here for the order client and
    tells the core only the key's id.

    Examples
    --------
    >>> state = SharedState("binance")
    >>> state.add_symbols(["BTCUSDT"], tick_sizes=0.1)
    >>> state.add_clients("my-api-key", "my-secret", "BTCUSDT")
    >>> state.key_id("BTCUSDT").startswith("key-")
    True
    >>> "my-secret" in repr(state.credentials_for("BTCUSDT"))
    False
    """

    def __init__(self, exchange: str, **options: object) -> None:
        self._credentials: dict[str, ApiCredentials] = {}

    def add_clients(self, key: str, secret: str, symbol: str, label: str | None = None) -> None:
        """Registers the API key that trades ``symbol`` (the original bot's ``add_clients``)."""
        credentials = ApiCredentials(key, secret, label)
        self.assign_key(symbol, credentials.key_id)
        self._credentials[credentials.key_id] = credentials

    def credentials_for(self, symbol: str) -> ApiCredentials | None:
        """The credentials serving ``symbol``, for the order client."""
        key_id = self.key_id(symbol)
        return None if key_id is None else self._credentials.get(key_id)
