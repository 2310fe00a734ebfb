"""Device cookies: the sign-in lockout without locking a person out of their own browser.

Five failed sign-ins lock an email for 15 minutes (domain.MAX_FAILURES), so anyone who knows an address can keep
its person out. A browser that signed in to the account before brings a device cookie for it, made at that
sign-in, and its attempts are counted apart: guesses from elsewhere lock the email, not that browser, and five
failures of that browser lock that browser alone.

A device cookie is `<issued>.<nonce>.<mac>`: the time it was made (Unix seconds), a random id, and an HMAC of both
with the account's id, email and `devices_epoch`, under a key of the portal's secret; nothing else is stored. Its
cookie is named for the email (tf_device_<12 hex of an HMAC of the email>), so a browser knows each account it
signed in to. It is good for a year after it was made, while the account's `devices_epoch` is the one it was made
under (a new password, disabling or enabling, "sign out everywhere else" count it up: each forgets every device),
and never for a disabled account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

LIFE = timedelta(days=365)
KEPT = 20  # device cookies a browser keeps (the accounts it signed in to last)
COOKIE_PREFIX = "tf_device_"
_LONGEST = 200  # characters of a cookie's value read; a longer one is no device cookie


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"ticketflow portal device", hashlib.sha256).digest()


def cookie_name(secret: str, email: str, secure: bool) -> str:
    """The cookie of the device token for this email (`__Host-` over https: bound to this host)."""
    tag = hmac.new(_key(secret), b"name|" + email.strip().lower().encode(), hashlib.sha256).hexdigest()[:12]
    return ("__Host-" if secure else "") + COOKIE_PREFIX + tag


def token(secret: str, account: dict, at: datetime, nonce: str | None = None) -> str:
    """A device token of `account` for a browser that just proved its password: a new device id, or `nonce`, the
    one it had (signed again under the account's epoch now, its count of failures kept)."""
    issued, nonce = str(int(at.timestamp())), nonce or secrets.token_urlsafe(12)
    return f"{issued}.{nonce}.{_mac(secret, account, issued, nonce)}"


def oldest_beyond(cookies: dict[str, str], keep: int) -> list[str]:
    """The names of a browser's device cookies past the newest `keep` (by the time each was made), oldest first:
    those a browser used for many accounts drops, so that its cookies stay well under a request header's size."""
    made = []
    for name, value in cookies.items():
        if COOKIE_PREFIX in name:
            issued = value.partition(".")[0]
            made.append((int(issued) if issued.isascii() and issued.isdigit() and len(issued) <= 12 else 0, name))
    made.sort(reverse=True)
    return [name for _, name in reversed(made[keep:])]


def known(secret: str, account: dict | None, value: str | None, now: datetime) -> str | None:
    """The device's id when `value` is a good device token of `account` (see the module's rules); else None."""
    if account is None or not value or len(value) > _LONGEST or account.get("disabled_at"):
        return None
    issued, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (issued.isascii() and issued.isdigit() and len(issued) <= 12 and nonce and mac):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(secret, account, issued, nonce).encode()):
        return None
    made = int(issued)
    if made > now.timestamp() + 60 or made < (now - LIFE).timestamp():
        return None
    return nonce


def _mac(secret: str, account: dict, issued: str, nonce: str) -> str:
    epoch = int(account.get("devices_epoch") or 0)
    what = f"{account['_id']}|{account['email'].strip().lower()}|{epoch}|{issued}|{nonce}".encode()
    return hmac.new(_key(secret), what, hashlib.sha256).hexdigest()[:32]
