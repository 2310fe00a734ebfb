"""The admin pages' use cases. Each calls a service's API with the signed-in admin's own token, so every
rule (and every field error) is the service's; these modules only turn a form into a request body, as the
API takes it, and a refusal into a `UserError` whose field errors carry the form's names.
"""

from __future__ import annotations

import math
import re

from services.portal.client import Refused, path_id  # noqa: F401 - path_id: the admin modules take it from here
from services.portal.handlers import UserError

SEPARATORS = re.compile(r"[,\s]+")


def refusal(refused: Refused, names: dict[str, str] | None = None) -> UserError:
    """A service's refusal with its field errors under the form's field names (`teams.0` counts as `teams`)."""
    names = names or {}
    errors: dict[str, list[str]] = {}
    for field, messages in refused.errors.items():
        name = names.get(field) or names.get(field.split(".")[0]) or field.split(".")[0]
        errors.setdefault(name, []).extend(messages if isinstance(messages, list) else [str(messages)])
    return UserError(refused.detail or refused.title, errors, refused.status)


def number(text: str | None) -> int | float | str:
    """A number typed in a form, as JSON carries it; anything else as typed, for the service to refuse."""
    text = (text or "").strip()
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if math.isfinite(value) else text
    return text


def words(text: str | None) -> list[str]:
    """Items typed in one field, separated by commas, spaces or new lines."""
    return [item for item in SEPARATORS.split(text or "") if item]


def require_id(text: str, field: str, what: str) -> str:
    """The id for a path; a field error when there is none (a service cannot be asked about an empty one)."""
    if not text.strip():
        raise UserError(f"Enter the {what}'s id.", {field: [f"Enter the {what}'s id."]})
    return path_id(text)
