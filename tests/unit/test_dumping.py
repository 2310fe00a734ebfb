"""shared.dumping: every response schema of every service dumps as marshmallow dumps it."""

from __future__ import annotations

import importlib
import inspect
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from marshmallow import Schema, fields, missing, post_dump

from shared.dumping import Blueprint, compiled
from shared.events import Timestamp

MODULES = [
    "services.intake.schemas",
    "services.assignment.schemas",
    "services.sla.schemas",
    "services.notify.schemas",
    "services.search.schemas",
    "services.portal.schemas",
    "shared.schemas",
]
SCHEMAS = sorted(
    {
        (module, name)
        for module in MODULES
        for name, value in vars(importlib.import_module(module)).items()
        if inspect.isclass(value) and issubclass(value, Schema) and value.__module__ == module
    }
)
T0 = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def _value(field: fields.Field, rng: random.Random, depth: int):
    """A value for `field` as a handler might return it: usually right, sometimes None, missing or odd."""
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return missing
    if isinstance(field, fields.Nested):
        nested = field.schema
        if depth > 3:
            return None
        if nested.many or field.many:
            return [_object(nested, rng, depth + 1) for _ in range(rng.randint(0, 3))]
        return _object(nested, rng, depth + 1)
    if isinstance(field, fields.List):
        return [v for v in (_value(field.inner, rng, depth + 1) for _ in range(rng.randint(0, 3))) if v is not missing]
    odd = roll < 0.25  # a type the short cuts do not take: the field's own _serialize must answer
    if isinstance(field, Timestamp):
        moment = T0 + timedelta(seconds=rng.randint(-(10**6), 10**6), microseconds=rng.randint(0, 999_999))
        return moment.isoformat() if odd else moment
    if isinstance(field, fields.Boolean):
        return rng.choice([1, 0, "yes", "false"]) if odd else rng.choice([True, False])
    if isinstance(field, fields.Integer):
        return rng.choice([True, 2.7, "12"]) if odd else rng.randint(-5, 10**6)
    if isinstance(field, fields.Float):
        return rng.choice([3, True]) if odd else rng.uniform(-1, 100)
    if isinstance(field, fields.String):
        return rng.choice([42, b"bytes", 1.5]) if odd else rng.choice(["", "a", "é日本", "x" * 30])
    if isinstance(field, fields.Dict | fields.Raw):
        return {"k": rng.randint(0, 9), "nested": [1, "two", None]}
    return rng.choice(["text", 7, None])


def _object(schema: Schema, rng: random.Random, depth: int = 0):
    """A dict (or, one in three, an object with attributes) for `schema`'s fields, some left out."""
    values = {}
    for name, field in schema.dump_fields.items():
        value = _value(field, rng, depth)
        if value is not missing:
            values[field.attribute or name] = value
    return SimpleNamespace(**values) if rng.random() < 0.33 else values


@pytest.mark.parametrize(("module", "name"), SCHEMAS, ids=[f"{m.split('.')[-2]}.{n}" for m, n in SCHEMAS])
def test_every_response_schema_dumps_as_marshmallow(module, name):
    cls = getattr(importlib.import_module(module), name)
    try:
        schema = cls()
    except TypeError:
        pytest.skip(f"{name} takes arguments")
    fast = compiled(schema)
    rng = random.Random(f"{module}.{name}")
    for _ in range(60):
        obj = _object(schema, rng)
        expected = _outcome(schema.dump, obj)
        assert (_outcome(fast, obj) if fast is not None else expected) == expected, obj
    if fast is not None:
        many = [_object(schema, rng) for _ in range(3)]
        assert _outcome(fast, many, many=True) == _outcome(schema.dump, many, many=True)


def _outcome(dump, *args, **kwargs):
    try:
        return ("ok", dump(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 -- the same error, or the same dict
        return ("error", type(exc))


def test_the_shortcuts_are_taken_for_the_services_lists():
    from services.assignment.schemas import TicketListSchema

    assert compiled(TicketListSchema()) is not None


def test_schemas_with_dump_hooks_are_left_to_marshmallow():
    class Hooked(Schema):
        a = fields.String()

        @post_dump
        def upper(self, data, **kwargs):
            return {key: value.upper() for key, value in data.items()}

    class Dotted(Schema):
        a = fields.String(attribute="x.y")

    class Computed(Schema):
        a = fields.Method("compute")

        def compute(self, obj):
            return 1

    assert compiled(Hooked()) is None and compiled(Dotted()) is None and compiled(Computed()) is None


def test_a_schema_nested_in_itself_is_dumped_by_marshmallow_where_it_nests():
    class Tree(Schema):
        name = fields.String()
        children = fields.List(fields.Nested(lambda: Tree()))

    fast, tree = compiled(Tree()), {"name": "a", "children": [{"name": "b", "children": []}]}
    assert fast is not None and fast(tree) == Tree().dump(tree)


def test_a_field_s_serialize_is_given_its_name_as_marshmallow_gives_it():
    class Named(fields.Field):
        def _serialize(self, value, attr, obj, **kwargs):
            return f"{attr}={value}"

    class Out(Schema):
        n = Named(attribute="src")

    assert compiled(Out())({"src": 1}) == Out().dump({"src": 1}) == {"n": "n=1"}


def test_the_blueprint_leaves_a_schema_instance_it_is_given_as_it_was():
    instance = __import__("services.assignment.schemas", fromlist=["TicketSchema"]).TicketSchema()
    Blueprint("u", __name__).response(200, instance)
    assert "dump" not in vars(instance)


def test_the_blueprint_dumps_its_responses_with_the_compiled_dump():
    from flask import Flask
    from flask.views import MethodView

    class Out(Schema):
        ticket_id = fields.String(attribute="id")
        at = Timestamp()

    bp = Blueprint("t", __name__)

    @bp.route("/x")
    class X(MethodView):
        @bp.response(200, Out)
        def get(self):
            return {"id": "t1", "at": T0}

    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    from flask_smorest import Api

    Api(app).register_blueprint(bp)
    assert app.test_client().get("/x").get_json() == {"ticket_id": "t1", "at": "2026-11-30T09:30:00.000Z"}
