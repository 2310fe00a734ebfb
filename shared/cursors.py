"""Keyset pagination for every list of the APIs: one sort order, and an opaque cursor after the last item.

The cursor is the sort key of the last item seen, as url-safe base64 JSON; the next page is what
comes after that key in the order, so items written meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

from shared.errors import Invalid


@dataclass(frozen=True)
class Key:
    """One part of the sort key: its name in the cursor, the document's field, and its type."""

    name: str
    field: str
    kind: type  # int, str or datetime


@dataclass(frozen=True)
class Paginator:
    """Pages of a collection sorted by `keys` (the last one unique, e.g. `_id`), all ascending or all descending."""

    keys: tuple[Key, ...]
    descending: bool = False

    @property
    def order(self) -> list[tuple[str, int]]:
        direction = DESCENDING if self.descending else ASCENDING
        return [(key.field, direction) for key in self.keys]

    def page(
        self, collection: Collection, filters: dict, limit: int, cursor: str | None, projection: dict | None = None
    ) -> tuple[list[dict], str | None]:
        """Up to `limit` documents matching `filters` (None values ignored) after the cursor; the next cursor."""
        query = {name: value for name, value in filters.items() if value is not None}
        if cursor:
            after = self.after(cursor)
            query = {"$and": [query, after]} if query.keys() & after.keys() else query | after
        docs = list(collection.find(query, projection).sort(self.order).limit(limit + 1))
        more = len(docs) > limit
        return docs[:limit], self.cursor(docs[limit - 1]) if more else None

    def cursor(self, doc: dict) -> str:
        values = {key.name: _encode(doc[key.field]) for key in self.keys}
        return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")

    def after(self, cursor: str) -> dict:
        """The filter for the documents after the cursor's key; 422 for a cursor this API did not give out."""
        values = [_decode(key, value) for key, value in zip(self.keys, _values(cursor, self.keys), strict=True)]
        beyond = "$lt" if self.descending else "$gt"
        clauses = [
            {
                **{key.field: value for key, value in zip(self.keys[:i], values, strict=False)},
                self.keys[i].field: {beyond: values[i]},
            }
            for i in range(len(self.keys))
        ]
        if len(clauses) == 1:
            return clauses[0]
        # Every clause keeps the first key at or beyond its value: said as a range too, an index walks from there
        # (the `$or` alone would be filtered from the start of the list)
        return {self.keys[0].field: {beyond + "e": values[0]}, "$or": clauses}


def _invalid() -> Invalid:
    return Invalid("The cursor is not one this API gave out.", {"cursor": ["Invalid cursor."]})


def _encode(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _values(cursor: str, keys: tuple[Key, ...]) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise _invalid() from None
    if not isinstance(values, dict) or set(values) != {key.name for key in keys}:
        raise _invalid()
    return [values[key.name] for key in keys]


def _decode(key: Key, value: object) -> object:
    if key.kind is int:
        if type(value) is not int or not 0 <= value < 2**63:
            raise _invalid()
        return value
    if type(value) is not str:
        raise _invalid()
    if key.kind is str:
        return value
    try:  # a forged cursor may name a time without a zone, or one that UTC moves out of datetime's range
        moment = datetime.fromisoformat(value)
        if moment.utcoffset() is None:
            raise ValueError(value)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid() from None
