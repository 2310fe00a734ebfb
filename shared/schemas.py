"""Building blocks of every service's HTTP schemas (the same rules for the same kinds of input)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate


class FullMatch(validate.Regexp):
    """Regexp on the whole value: with re.match, `$` would also let a trailing newline through."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def unique(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Must not repeat a value.")


def text(max_length: int, **kwargs) -> fields.String:
    """A string of 1..max_length characters that is not only white space."""
    return fields.String(validate=[validate.Length(1, max_length), not_blank], **kwargs)


class Strict(Schema):
    """Request bodies: a field the API does not know is an error (422), never silently dropped."""

    class Meta:
        unknown = RAISE
