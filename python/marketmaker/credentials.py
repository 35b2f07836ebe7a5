"""API credentials: the secret stays in Python, out of logs, reprs and the core.

The core only ever sees a key id (``key-`` and eight hex digits of a SHA-256 of the API key),
which identifies the account in state, logs and the journal without revealing anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from marketmaker.errors import ConfigError

__all__ = ["ApiCredentials", "key_id_of", "resolve_secret"]


def key_id_of(api_key: str) -> str:
    """A stable, non-reversible id for an API key."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


def resolve_secret(value: str, *, where: str) -> str:
    """Reads ``env:VAR`` references from the environment; other values are returned as is.

    Raises
    ------
    ConfigError
        When the variable is not set; the message names ``where`` and the variable, never a value.
    """
    if value.startswith("env:"):
        name = value[4:]
        resolved = os.environ.get(name)
        if not resolved:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return resolved
    return value


@dataclass(frozen=True)
class ApiCredentials:
    """An API key and its secret. ``repr``/``str`` never show the secret or the whole key.

    Examples
    --------
    >>> creds = ApiCredentials("my-api-key-123456", "top-secret")
    >>> "top-secret" in repr(creds)
    False
    """

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ConfigError("API key and secret must both be non-empty")

    @property
    def key_id(self) -> str:
        """The id the core and the logs use for this key."""
        return self.label or key_id_of(self.api_key)

    def __repr__(self) -> str:
        return f"ApiCredentials(key_id={self.key_id!r}, secret=<redacted>)"

    __str__ = __repr__
