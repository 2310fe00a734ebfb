"""Building blocks of every service's HTTP schemas (the same rules for the same kinds of input)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

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


_JOINERS = {"\u200c", "\u200d"}  # zero-width (non-)joiners: parts of how some scripts and emoji are written


def hidden_character(char: str) -> bool:
    """Control, format (bidi controls, zero-width spaces), line and paragraph separator characters: they make one
    name show as another ("\u202eevil" reads "live"), or two names that look the same differ."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char not in _JOINERS


def shown_as_typed(value: str) -> None:
    if found := next((char for char in value if hidden_character(char)), None):
        raise ValidationError(f"Must not hold control characters (U+{ord(found):04X}): a name shows as typed.")


_OVERRIDES = dict.fromkeys(range(0x202A, 0x202F))  # bidi embeddings and overrides (LRE RLE PDF LRO RLO): dropped


def one_line(text: str) -> str:
    """The text with each control character or line break a space: it shows as one line and never starts a line of
    its own in an email it goes into ("Hello Ana\r\nBcc: ..."). Bidi embeddings and overrides are dropped: one makes
    a subject show as another ("\u202eexe.txt" reads "txt.exe"), in a queue and in an email's subject alike. Other
    format characters (bidi marks and isolates) stay: names in right-to-left scripts need them."""
    text = text.translate(_OVERRIDES)
    return "".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text)


class OneLine(fields.String):
    """A line of text (a ticket's subject, a person's name), read through `one_line` (pasted, or from an email's
    header)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return one_line(super()._deserialize(value, attr, data, **kwargs))


def name_text(max_length: int, **kwargs) -> fields.String:
    """A name people choose things by (a team's, a topic's, an agent's): text, and no control characters."""
    return fields.String(validate=[validate.Length(1, max_length), not_blank, shown_as_typed], **kwargs)


FILE_NAME_MAX = 255
# What one attached file, and the files of one mail or one form post together, may weigh (decoded bytes): intake
# takes no more (contract section 10), and the portal checks its form's files against the same before sending.
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENTS_MAX_BYTES = 25 * 1024 * 1024
FILES_NAMED_MOST = 50  # file names an event carries (a mail with more: the first 50)


def clean_filename(name: str | None) -> str:
    """The file's own name: no folders, no control or format characters (no right-to-left override that shows
    `exe.txt` for `txt.exe`), at most 255 characters with its extension kept; "attachment" when nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] not in ("C", "Z") or char == " ")
    name = name.strip()
    if name in ("", ".", ".."):
        return "attachment"
    if len(name) > FILE_NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        extension = extension if dot and stem and len(extension) <= 16 else ""
        name = name[: FILE_NAME_MAX - len(extension) - 1].rstrip() + "." + extension if extension else name[:255]
    return name


def named_files(names: Iterable[str | None]) -> list[str]:
    """The names files are stored under (`clean_filename`), as an event names them: the first FILES_NAMED_MOST."""
    return [clean_filename(name) for name in names][:FILES_NAMED_MOST]


def files_sent(names: list[str], count: int | None = None) -> str:
    """The words of a message or reply that is only files (the screenshot an agent asked for): "Sent a file:
    screen.png", "Sent 3 files: a.pdf, b.png, c.txt"; `count` when there were more files than `names`."""
    count = max(count or 0, len(names))
    joined = ", ".join(names) + (", …" if count > len(names) else "")
    return f"Sent a file: {joined}" if count == 1 else f"Sent {count} files: {joined}"


class FileName(fields.String):
    """A file's name as its sender's computer gave it, read as a stored attachment's is named (`clean_filename`)."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return clean_filename(super()._deserialize(value, attr, data, **kwargs))


def file_names(**kwargs) -> fields.List:
    """The names of the files that go with a message or a reply (for its emails): at most FILES_NAMED_MOST."""
    described = "the names of the files the client attaches to it next (`POST /tickets/{id}/attachments` on intake)"
    return fields.List(
        FileName(),  # any string: cleaned to what the stored file is named (at most FILE_NAME_MAX characters)
        validate=validate.Length(max=FILES_NAMED_MOST),
        metadata={"description": f"{described}, named in its emails; at most {FILES_NAMED_MOST}"},
        **kwargs,
    )


class Strict(Schema):
    """Request bodies: a field the API does not know is an error (422), never silently dropped."""

    class Meta:
        unknown = RAISE


class QueryBoolean(fields.Boolean):
    """A query parameter's `true` or `false`, spelled so: never 1, yes, on or True."""

    default_error_messages = {"invalid": "Use true or false, in lowercase."}

    def __init__(self, **kwargs) -> None:
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)
