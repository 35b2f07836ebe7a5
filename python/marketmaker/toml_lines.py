"""Where a key is written in a TOML text: the line numbers that ``tomllib`` does not give.

Configuration errors name the line of the offending key (``config.toml:14: risk.max_position:
...``). ``tomllib`` returns plain dicts without positions, so :class:`KeyLines` scans the text
itself: table headers (``[risk]``, ``[sim.synthetic]``), assignments (``key =``, dotted
``a.b =``, quoted keys) and, inside array values, the line where each element starts, so that
``bps[1]`` or ``api_keys[0][2]`` point at the element even in an array written over several
lines. The scanner expects text that ``tomllib`` has already accepted; on anything it does not
understand it skips to the next line rather than fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KeyLines", "split_key_path"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]|(\.)")


def split_key_path(key_path: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Splits ``"a.b[1][0]"`` into the names ``("a", "b")`` and the indexes ``(1, 0)``.

    Indexes are only understood after the last name (arrays of plain values, as the
    configuration uses them).

    Examples
    --------
    >>> split_key_path("bps[1][0]")
    (('bps',), (1, 0))
    >>> split_key_path("sim.synthetic.volatility")
    (('sim', 'synthetic', 'volatility'), ())
    """
    names: list[str] = []
    indexes: list[int] = []
    for match in _KEY_PATH_PART.finditer(key_path):
        name, index, _dot = match.groups()
        if name is not None:
            if indexes:  # a name after an index: a table inside an array, not located further
                break
            names.append(name)
        elif index is not None:
            indexes.append(int(index))
    return tuple(names), tuple(indexes)


@dataclass(frozen=True)
class _Entry:
    line: int
    value_offset: int | None  # None for a table header


class KeyLines:
    """The line (1-based) where each key of a TOML text is written.

    Parameters
    ----------
    text : str
        The TOML document, already accepted by ``tomllib``.

    Examples
    --------
    >>> lines = KeyLines('a = 1\\n[risk]\\nmax_position = 2\\nbps = [\\n  ["X", 1],\\n  ["Y", 2],\\n]\\n')
    >>> lines.line_of("risk.max_position")
    3
    >>> lines.line_of("risk.bps[1]")
    6
    >>> lines.line_of("risk.missing")  # not written: the table's header
    2
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._line_starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._scan()

    def line_of(self, key_path: str) -> int | None:
        """The line of ``key_path``, or of its nearest written parent; None if nothing matches.

        A key that is not written (a missing required key, a default) is reported at its
        table's header when the table is written.
        """
        names, indexes = split_key_path(key_path)
        for length in range(len(names), 0, -1):
            entry = self._entries.get(names[:length])
            if entry is None:
                continue
            if length == len(names) and indexes and entry.value_offset is not None:
                element = self._element_offset(entry.value_offset, indexes)
                if element is not None:
                    return self._line_at(element)
            return entry.line
        return None

    # -- scanning -------------------------------------------------------------------------------

    def _line_at(self, offset: int) -> int:
        low, high = 0, len(self._line_starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._line_starts[middle] <= offset:
                low = middle
            else:
                high = middle - 1
        return low + 1

    def _scan(self) -> None:
        text = self._text
        table: tuple[str, ...] = ()
        pos = 0
        while pos < len(text):
            pos = self._skip_blank(pos, newlines=True)
            if pos >= len(text):
                break
            char = text[pos]
            if char == "[":
                double = text.startswith("[[", pos)
                names, after = self._read_key(pos + (2 if double else 1), stop="]")
                if names is not None:
                    table = names
                    self._entries[table] = _Entry(self._line_at(pos), None)
                pos = self._next_line(after)
                continue
            names, after = self._read_key(pos, stop="=")
            if names is None or after >= len(text) or text[after] != "=":
                pos = self._next_line(pos)
                continue
            value = self._skip_blank(after + 1, newlines=False)
            self._entries.setdefault(table + names, _Entry(self._line_at(pos), value))
            pos = self._next_line(self._skip_value(value))

    def _next_line(self, pos: int) -> int:
        end = self._text.find("\n", pos)
        return len(self._text) if end < 0 else end + 1

    def _skip_blank(self, pos: int, *, newlines: bool) -> int:
        text = self._text
        while pos < len(text):
            char = text[pos]
            if char in " \t\r" or (newlines and char == "\n"):
                pos += 1
            elif char == "#" and newlines:
                pos = self._next_line(pos)
            else:
                break
        return pos

    def _read_key(self, pos: int, *, stop: str) -> tuple[tuple[str, ...] | None, int]:
        """Reads a (dotted, maybe quoted) key up to ``stop``; returns its parts and the offset
        of ``stop``."""
        text = self._text
        parts: list[str] = []
        while True:
            pos = self._skip_blank(pos, newlines=False)
            if pos >= len(text):
                return None, pos
            char = text[pos]
            if char in "\"'":
                end = text.find(char, pos + 1)
                if end < 0:
                    return None, pos
                parts.append(text[pos + 1 : end])
                pos = end + 1
            else:
                match = _BARE_KEY.match(text, pos)
                if match is None:
                    return None, pos
                parts.append(match.group())
                pos = match.end()
            pos = self._skip_blank(pos, newlines=False)
            if pos < len(text) and text[pos] == ".":
                pos += 1
                continue
            if pos < len(text) and text[pos] == stop:
                return tuple(parts), pos
            return None, pos

    def _skip_string(self, pos: int) -> int:
        text = self._text
        quote = text[pos]
        if text.startswith(quote * 3, pos):
            end = text.find(quote * 3, pos + 3)
            if end < 0:
                return len(text)
            end += 3
            while end < len(text) and text[end] == quote:  # up to two quotes may end the content
                end += 1
            return end
        pos += 1
        while pos < len(text) and text[pos] not in (quote, "\n"):
            pos += 2 if quote == '"' and text[pos] == "\\" else 1
        return pos + 1

    def _skip_value(self, pos: int) -> int:
        """The offset just past the value starting at ``pos`` (strings, arrays, inline tables
        and bare values)."""
        text = self._text
        if pos >= len(text):
            return pos
        char = text[pos]
        if char in "\"'":
            return self._skip_string(pos)
        if char in "[{":
            closing = "]" if char == "[" else "}"
            pos += 1
            while pos < len(text):
                pos = self._skip_blank(pos, newlines=True)
                if pos >= len(text):
                    break
                char = text[pos]
                if char == closing:
                    return pos + 1
                if char in ",=":
                    pos += 1
                elif char in "\"'[{":
                    pos = self._skip_value(pos)
                else:
                    pos = self._skip_bare(pos)
            return pos
        return self._skip_bare(pos)

    def _skip_bare(self, pos: int) -> int:
        text = self._text
        start = pos
        while pos < len(text) and text[pos] not in ",]}=#\n \t\r":
            pos += 1
        return pos if pos > start else pos + 1

    def _element_offset(self, pos: int, indexes: tuple[int, ...]) -> int | None:
        """The offset of element ``indexes`` of the (nested) array starting at ``pos``."""
        text = self._text
        for index in indexes:
            if pos >= len(text) or text[pos] != "[":
                return None
            pos += 1
            count = 0
            while True:
                pos = self._skip_blank(pos, newlines=True)
                if pos >= len(text) or text[pos] == "]":
                    return None
                if text[pos] == ",":
                    pos += 1
                    continue
                if count == index:
                    break
                pos = self._skip_value(pos)
                count += 1
        return pos
