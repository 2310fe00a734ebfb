"""The baseline for benchmarks/intake_post.py: bare Flask + pymongo inserting the same ticket document."""

import json
import os
import uuid
from datetime import UTC, datetime

from flask import Flask, request
from pymongo import MongoClient

app = Flask(__name__)
_client = None


def collection():
    global _client
    if _client is None:  # after the fork, like the real service
        _client = MongoClient(os.environ["MONGO_URL"], tz_aware=True)
    return _client[os.environ["BARE_DATABASE"]]["tickets"]


@app.post("/tickets")
def create():
    body = json.loads(request.get_data())
    now = datetime.now(UTC)
    doc = {
        "_id": uuid.uuid4().hex,
        "number": 0,
        **body,
        "status": "new",
        "assignee": None,
        "team": None,
        "sla": {"first_response_due_at": None, "resolution_due_at": None, "breached": False},
        "thread": [],
        "created_at": now,
        "updated_at": now,
        "resolved_at": None,
        "closed_at": None,
        "watermarks": {},
    }
    collection().insert_one(doc)
    doc["created_at"] = doc["updated_at"] = now.isoformat()
    return doc, 201
