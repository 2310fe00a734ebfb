"""Opaque list cursors: the sort key of the last item seen, as url-safe base64 JSON."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

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


def time_cursor(at: datetime, doc_id: str) -> str:
    """The cursor after an item of a list ordered by a time, then by _id."""
    return encode_cursor({"at": at.isoformat(), "id": doc_id})


def after_time_cursor(field: str, cursor: str, newest_first: bool) -> dict:
    """The filter for the items after the cursor's (time, _id) in that order; 422 for a cursor not given out."""
    after = decode_cursor(cursor, {"at": str, "id": str})
    try:
        at = datetime.fromisoformat(after["at"])
        if at.utcoffset() is None:
            raise ValueError(after["at"])
        at = at.astimezone(UTC)  # OverflowError when the offset moves it out of datetime's range
    except (ValueError, OverflowError):
        raise Invalid("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]}) from None
    beyond = "$lt" if newest_first else "$gt"
    return {"$or": [{field: {beyond: at}}, {field: at, "_id": {beyond: after["id"]}}]}
