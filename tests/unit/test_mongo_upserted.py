"""shared.mongo.upserted: an upsert whose filter holds more than `_id`, tried once more when its insert collides."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from shared.mongo import upserted


def test_an_upsert_that_lost_a_race_to_create_its_document_is_tried_once_more():
    attempts = []

    def write():
        attempts.append(1)
        if len(attempts) == 1:  # another upsert created the document between this one's match and insert
            raise DuplicateKeyError("E11000 duplicate key error")
        return "written"

    assert upserted(write) == "written" and len(attempts) == 2

    def newer():  # the document holds a newer value: the filter never matches, the insert always collides
        attempts.append(1)
        raise DuplicateKeyError("E11000 duplicate key error")

    attempts.clear()
    assert upserted(newer) is None and len(attempts) == 2
