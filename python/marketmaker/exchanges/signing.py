"""HMAC-SHA256 request signatures for Binance USDⓈ-M and Bybit v5.

Both venues sign the exact bytes sent: the caller passes the query string and body as they go
on the wire (or as they were received), never a re-encoded form. Signatures are lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["binance_signature", "bybit_signature", "signature_matches"]


def _as_bytes(text: bytes | str) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def binance_signature(secret: bytes | str, total_params: bytes | str) -> str:
    """The ``signature`` parameter of a Binance SIGNED request.

    Parameters
    ----------
    secret
        The API secret.
    total_params
        The query string immediately followed by the request body (no ``&`` between them),
        without the ``signature`` parameter, exactly as sent.

    Returns
    -------
    str
        Lowercase hex HMAC-SHA256 of ``total_params`` keyed by ``secret``.

    Examples
    --------
    The published USDⓈ-M vector:

    >>> binance_signature(
    ...     "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
    ...     "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000"
    ...     "&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943",
    ... )
    '3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9'
    """
    return hmac.new(_as_bytes(secret), _as_bytes(total_params), hashlib.sha256).hexdigest()


def bybit_signature(
    secret: bytes | str, *, timestamp_ms: int | str, api_key: str, recv_window_ms: int | str, payload: bytes | str
) -> str:
    """The ``X-BAPI-SIGN`` header of a Bybit v5 request.

    Parameters
    ----------
    secret
        The API secret.
    timestamp_ms
        The ``X-BAPI-TIMESTAMP`` header value (milliseconds).
    api_key
        The ``X-BAPI-API-KEY`` header value.
    recv_window_ms
        The ``X-BAPI-RECV-WINDOW`` header value.
    payload
        The query string of a GET, or the exact JSON body of a POST.

    Returns
    -------
    str
        Lowercase hex HMAC-SHA256 of ``timestamp + api_key + recv_window + payload``.

    Examples
    --------
    >>> sig = bybit_signature("secret", timestamp_ms=1658384314791, api_key="key", recv_window_ms=5000, payload="category=linear")
    >>> sig == binance_signature("secret", "1658384314791key5000category=linear")
    True
    """
    prefix = f"{timestamp_ms}{api_key}{recv_window_ms}".encode()
    return hmac.new(_as_bytes(secret), prefix + _as_bytes(payload), hashlib.sha256).hexdigest()


def signature_matches(expected_hex: str, received: str) -> bool:
    """Constant-time comparison of a computed and a received hex signature (case-insensitive)."""
    return hmac.compare_digest(expected_hex.encode(), received.lower().encode())
