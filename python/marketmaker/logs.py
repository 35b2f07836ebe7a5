"""Structured logs for the long-running commands: one JSON object per line on stderr
(``time``, ``level``, ``logger``, ``message``, and ``error`` with the exception), and a filter
that blanks every secret the process holds, should any code ever format one into a message."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

__all__ = ["JsonLogFormatter", "SecretFilter", "configure_logging"]


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Replaces the given secrets by ``***`` in every record's message and arguments."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            for secret in self._secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def configure_logging(level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Structured logs on stderr for this process, secrets blanked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # cryptofeed narrates every connect and shutdown at INFO; its warnings and errors still show.
    logging.getLogger("feedhandler").setLevel(max(level, logging.WARNING))
