"""The few RFC 9651 structured-field values the resumable-upload draft uses.

Pure functions, no WSGI.  Parsers return ``None`` for a value that is not
exactly what RFC 9651 allows: the draft says such a field "MUST be ignored",
so callers treat ``None`` like an absent header.  Only two kinds of
bare item are needed (``?0``/``?1`` and integers); parameters after an item (``?1;a=b``) are
valid structured fields and are skipped.
"""

from __future__ import annotations

import re

#: RFC 9651 section 3.3.1: at most 15 digits.
MAX_INTEGER = 999_999_999_999_999

_INTEGER = re.compile(r"-?[0-9]{1,15}")
_BOOLEAN = re.compile(r"\?[01]")
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
# ``;key`` or ``;key=value`` parameters; their values are not needed.
_PARAMETERS = re.compile(
    r"(?:;[ ]*[a-z*][a-z0-9_.*-]*(?:=(?:-?[0-9]{1,15}(?:\.[0-9]{1,3})?|\?[01]"
    r"|\"(?:[^\"\\\x00-\x1f\x7f]|\\[\"\\])*\"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*))?)*"
)

Item = int | bool


def _strip(value: str) -> str:
    """RFC 9651 4.2 step 2: leading and trailing spaces (SP only) are discarded."""
    return value.strip(" ")


def _bare_item(text: str) -> tuple[Item, int] | None:
    """The boolean or integer at the start of ``text`` and its length, else None."""
    match = _BOOLEAN.match(text)
    if match:
        return match.group() == "?1", match.end()
    match = _INTEGER.match(text)
    if match:
        return int(match.group()), match.end()
    return None


def _item(text: str) -> Item | None:
    """A whole Item (bare item plus parameters) or ``None``."""
    found = _bare_item(text)
    if found is None:
        return None
    value, end = found
    params = _PARAMETERS.match(text, end)
    if params is None or params.end() != len(text):
        return None
    return value


def parse_boolean(value: str | None) -> bool | None:
    """``?1`` → True, ``?0`` → False; anything else (or absent) → None."""
    if value is None:
        return None
    item = _item(_strip(value))
    return item if isinstance(item, bool) else None


def parse_integer(value: str | None) -> int | None:
    """A non-negative Integer item, else None (the draft's fields are never negative)."""
    if value is None:
        return None
    item = _item(_strip(value))
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        return None
    return item


def parse_dictionary(value: str | None) -> dict[str, Item] | None:
    """A Dictionary of integer and boolean members (``Upload-Limit``), else None.

    A member without ``=`` is ``True`` (RFC 9651 4.2.2); a later duplicate
    key overrides an earlier one.  Members are split at commas, so a quoted
    parameter value containing one is refused (``Upload-Limit`` has none).
    """
    if value is None:
        return None
    result: dict[str, Item] = {}
    text = _strip(value)
    if not text:
        return result
    for member in text.split(","):
        member = member.strip(" \t")
        key_match = _KEY.match(member)
        if key_match is None:
            return None
        key, rest = key_match.group(), member[key_match.end():]
        if rest.startswith("="):
            item = _item(rest[1:])
            if item is None:
                return None
        else:
            if _PARAMETERS.fullmatch(rest) is None:
                return None
            item = True
        result[key] = item
    return result


def serialize_boolean(value: bool) -> str:
    return "?1" if value else "?0"


def serialize_dictionary(members: dict[str, int]) -> str:
    """``{"max-size": 10, "min-size": 0}`` → ``max-size=10, min-size=0``."""
    for key, number in members.items():
        if not _KEY.fullmatch(key) or not 0 <= number <= MAX_INTEGER:
            raise ValueError(f"not a structured-field member: {key}={number}")
    return ", ".join(f"{key}={number}" for key, number in members.items())
