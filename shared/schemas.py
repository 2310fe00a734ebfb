"""Building blocks of every service's HTTP schemas (the same rules for the same kinds of input)."""

from __future__ import annotations

import re

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


# control characters, and the bidi controls that make one name show as another ("\u202eevil" reads "live")
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def shown_as_typed(value: str) -> None:
    if found := _HIDDEN.search(value):
        raise ValidationError(f"Must not hold control characters (U+{ord(found.group()):04X}): a name shows as typed.")


def name_text(max_length: int, **kwargs) -> fields.String:
    """A name people choose things by (a team's, a topic's, an agent's): text, and no control characters."""
    return fields.String(validate=[validate.Length(1, max_length), not_blank, shown_as_typed], **kwargs)


def same_name(a: str, b: str) -> bool:
    """Whether two names would read the same in a list: case and runs of spaces aside."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


class Strict(Schema):
    """Request bodies: a field the API does not know is an error (422), never silently dropped."""

    class Meta:
        unknown = RAISE
