"""marshmallow schemas of the portal's JSON API (accounts, for ops scripts and `ticketflow account`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.portal.domain import PASSWORD_MAX, PASSWORD_MIN, ROLES
from shared.events import StrictBoolean, Timestamp
from shared.schemas import Strict


class AccountCreateSchema(Strict):
    email = fields.String(required=True, validate=validate.Length(3, 254))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    agent_id = fields.String(validate=validate.Length(1, 64), metadata={"description": "required for agents"})
    password = fields.String(
        validate=validate.Length(PASSWORD_MIN, PASSWORD_MAX),
        metadata={"description": "argon2id-hashed; leave it out to get a one-time link to set one"},
    )


class AccountChangeSchema(Strict):
    disabled = StrictBoolean(
        required=True,
        metadata={"description": "true: it cannot sign in and its sessions end at once; false: it signs in again"},
    )


class AccountSchema(Schema):
    id = fields.String(attribute="_id")
    email = fields.String()
    role = fields.String()
    agent_id = fields.String(allow_none=True)
    created_at = Timestamp()
    disabled_at = Timestamp(metadata={"description": "only when disabled: since when"})
    set_password_url = fields.String(
        metadata={
            "description": "at creation without a password, and from password-link: a one-time link (3 days) to set one"
        }
    )
