"""Responses dumped as marshmallow dumps them, without its per-field machinery (issue 16).

A page of 200 of assignment's queue rows is some 9,000 fields; marshmallow dumped them in about half the
time the API spent on the page (each field: `serialize`, an accessor, `get_value` through `utils`, the
missing checks, then `_serialize`). `compiled(schema)` reads a schema's dump fields once and returns a
function that gives the same dict: the same keys (`data_key`), values got the same way (an object's
item, else its attribute; `attribute` honoured), omitted when missing (or `dump_default`), and each value
through the field's own `_serialize`, except where that is known to return the value unchanged (a str for
a String, an int for an Integer, a float for a Float, a bool for a Boolean, None for those), and Nested and
List compiled in turn. A schema with dump hooks, a dotted attribute or a field that does not read its
attribute (Method, Function) is left to marshmallow: `compiled` returns None for it.

`Blueprint` (flask-smorest's) gives every response schema such a dump; tests/unit/test_dumping.py checks
it against marshmallow's own on generated objects of every response schema of every service.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import flask_smorest
from marshmallow import Schema, ValidationError, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from webargs.flaskparser import FlaskParser, is_json_request

Serializer = Callable[[Any, str, Any], Any]


_COMPILING: set[type] = set()  # schema classes being compiled: a schema nested in itself is left to marshmallow


def compiled(schema: Schema) -> Callable[..., Any] | None:
    """A function that dumps as `schema.dump(obj, many=None)` does, or None when it cannot be compiled."""
    if type(schema) in _COMPILING:
        return None
    _COMPILING.add(type(schema))
    try:
        plan = _plan(schema)
    finally:
        _COMPILING.discard(type(schema))
    if plan is None:
        return None
    one = _dumper(plan)
    default_many = schema.many

    def dump(obj: Any, *, many: bool | None = None) -> Any:
        if default_many if many is None else bool(many):
            return one(obj) if obj is None else [one(each) for each in obj]  # None: as marshmallow, {}
        return one(obj)

    return dump


def _plan(schema: Schema) -> list[tuple[str, str, str, Serializer, Any]] | None:
    if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP] or type(schema).get_attribute is not Schema.get_attribute:
        return None
    plan = []
    for name, field in schema.dump_fields.items():
        source = name if field.attribute is None else field.attribute
        if not field._CHECK_ATTRIBUTE or not isinstance(source, str) or "." in source:
            return None
        if type(field).serialize is not fields.Field.serialize or type(field).get_value is not fields.Field.get_value:
            return None
        key = name if field.data_key is None else field.data_key
        plan.append((key, source, name, _serializer(field), field.dump_default))
    return plan


def _dumper(plan: list[tuple[str, str, str, Serializer, Any]]) -> Callable[[Any], dict]:
    def one(obj: Any) -> dict:
        out = {}
        itemized = hasattr(obj, "__getitem__")
        for key, source, name, serialize, default in plan:
            value = _value(obj, source, itemized)
            if value is missing:
                value = default() if callable(default) else default
                if value is missing:
                    continue
            value = serialize(value, name, obj)  # a field's `_serialize` is given its name, as marshmallow does
            if value is not missing:
                out[key] = value
        return out

    return one


def _value(obj: Any, key: str, itemized: bool) -> Any:
    """marshmallow.utils.get_value for a key without dots."""
    if not itemized:
        return getattr(obj, key, missing)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, missing)


def _serializer(field: fields.Field) -> Serializer:
    """The field's `_serialize`, short-cut where it is known to return the value itself."""
    general, kind = field._serialize, type(field)._serialize
    same = None  # the type whose values the field's _serialize returns as they are (None too)
    if kind is fields.String._serialize:
        same = str
    elif kind is fields.Number._serialize and not field.as_string and type(field) in (fields.Integer, fields.Float):
        same = field.num_type
    elif kind is fields.Boolean._serialize and True in field.truthy and False in field.falsy:
        same = bool if False not in field.truthy else None
    if same is not None:
        return lambda value, attr, obj: value if value is None or type(value) is same else general(value, attr, obj)
    if kind is fields.Nested._serialize and (nested := compiled(field.schema)) is not None:
        many = bool(field.schema.many or field.many)
        return lambda value, attr, obj: None if value is None else nested(value, many=many)
    if kind is fields.List._serialize:
        inner = _serializer(field.inner)
        return lambda value, attr, obj: None if value is None else [inner(each, attr, obj) for each in value]
    return general


class _Parser(FlaskParser):
    """webargs' parser, stricter on two points: an empty body said to be JSON is not taken for `{}` (it is not JSON:
    400, as the contract has it for a malformed body, rather than a 422 for every field it lacks), and a query
    parameter of one value given twice is refused."""

    def load_json(self, req, schema):
        if is_json_request(req) and not req.get_data(cache=True).strip():
            return self._handle_invalid_json_error(json.JSONDecodeError("Expecting value", "", 0), req)
        return super().load_json(req, schema)

    def load_querystring(self, req, schema):
        """The query's parameters; one that takes a single value given twice (`status=new&status=closed`) is a
        422 naming it, not its first value alone (which would answer a question that was not asked)."""
        # webargs' own rule: a DelimitedList is one value ("a,b"), a List several
        multiple = lambda field: getattr(field, "is_multiple", isinstance(field, fields.List))  # noqa: E731
        single = {field.data_key or name for name, field in schema.fields.items() if not multiple(field)}
        twice = [name for name in req.args if name in single and len(req.args.getlist(name)) > 1]
        if twice:
            raise ValidationError({name: ["Give it once: it takes one value."] for name in twice})
        return super().load_querystring(req, schema)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint whose responses are dumped by `compiled` (documented as before), and whose
    arguments are read by `_Parser`."""

    ARGUMENTS_PARSER = _Parser()

    def response(self, status_code, schema=None, **kwargs):
        instance = flask_smorest.utils.resolve_schema_instance(schema) if schema is not None else None
        if instance is not None and (fast := compiled(instance)) is not None:
            instance = copy.copy(instance)  # an instance given here may be used elsewhere too: only this copy
            instance.dump = fast
        return super().response(status_code, instance, **kwargs)
