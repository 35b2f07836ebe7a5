"""Venue protocols on the client side: request signing (:mod:`.signing`), the Binance USDⓈ-M
order client and user stream (:mod:`.binance`, events in :mod:`.events`).

The local venue (:mod:`marketmaker.sim`) verifies requests with the same functions the order
clients sign them with, so one implementation is tested against the published vectors.
"""

from __future__ import annotations

from marketmaker.exchanges.signing import binance_signature, bybit_signature, signature_matches

__all__ = ["binance_signature", "bybit_signature", "signature_matches"]
