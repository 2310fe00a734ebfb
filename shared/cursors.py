"""Opaque list cursors: the sort key of the last item seen, as url-safe base64 JSON."""

from __future__ import annotations

import base64
import json

from shared.errors import Invalid


def encode_cursor(values: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, types: dict[str, type]) -> dict:
    """The values of a cursor this API gave out, each of the expected type; 422 for anything else."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, dict) or set(values) != set(types):
            raise ValueError
        for key, kind in types.items():
            if type(values[key]) is not kind or (kind is int and not 0 <= values[key] < 2**63):
                raise ValueError
        return values
    except ValueError:
        raise Invalid("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]}) from None
