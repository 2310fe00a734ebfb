"""The portal's own collections in `<ns>_portal`: accounts, sessions, sign-in failures, one-time password
links, rate-limit windows, check-status requests, new accounts' welcome emails, who has a ticket open, the
agents' saved replies and the requesters' ratings.
The only module that touches them.

Nothing expires by a TTL index (the embedded store has none): every read checks the expiry, and the
worker's `purge` removes what has expired.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from shared.clock import now
from shared.mongo import retire_indexes

FLASH_FOR = timedelta(minutes=10)  # a page's once-said outcome (set_flash) is dropped after that unsaid


FORGET_DEVICES = {"devices_epoch": 1}  # counted up: every device token made before is void (portal/devices.py)


def digest(token: str) -> str:
    """Secrets are stored as their SHA-256: a copy of the database opens no session and sets no password."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccountExists(Exception):
    """An account with this email exists."""


class TitleTaken(Exception):
    """Another saved reply has this title."""


class ChangedMeanwhile(Exception):
    """The document changed since the form that changes it was opened."""


class PortalStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.accounts = db["accounts"]
        self.sessions = db["sessions"]
        self.failures = db["sign_in_failures"]
        self.password_links = db["password_links"]
        self.limits = db["limits"]
        self.status_requests = db["status_requests"]
        self.presence = db["presence"]
        self.welcomes = db["welcome_emails"]
        self.password_resets = db["password_resets"]
        self.account_notices = db["account_notices"]
        self.confirmations = db["confirmed_addresses"]
        self.saved_replies = db["saved_replies"]
        self.ratings = db["ratings"]
        self.forgotten_keys = db["forgotten_form_keys"]
        self.departed = db["departed_agents"]  # the agents of deleted accounts: {_id: agent id, at}
        self.merges = db["merges_under_way"]  # {_id: the two tickets' ids, sorted and joined, at}: one at a time

    def ensure_indexes(self) -> None:
        self.accounts.create_index([("email", ASCENDING)], unique=True)
        self.sessions.create_index([("expires_at", ASCENDING)])
        self.password_links.create_index([("expires_at", ASCENDING)])
        self.limits.create_index([("expires_at", ASCENDING)])
        self.status_requests.create_index([("state", ASCENDING), ("created_at", ASCENDING)])
        # who has a ticket open, by name (a walk of the ticket's few); the purge by age
        self.presence.create_index([("ticket_id", ASCENDING), ("name", ASCENDING)])
        self.presence.create_index([("seen_at", ASCENDING)])
        retire_indexes(self.presence, "ticket_id_1_seen_at_1")
        self.welcomes.create_index([("state", ASCENDING), ("created_at", ASCENDING)])
        self.password_resets.create_index([("state", ASCENDING), ("created_at", ASCENDING)])
        self.account_notices.create_index([("state", ASCENDING), ("created_at", ASCENDING)])
        self.password_links.create_index([("account_id", ASCENDING)])
        self.saved_replies.create_index([("title_key", ASCENDING)], unique=True)
        self.ratings.create_index([("rated_at", ASCENDING)])  # the reports' period
        self.forgotten_keys.create_index([("expires_at", ASCENDING)])
        self.failures.create_index([("email", ASCENDING)])  # an email's own count and its known browsers'

    # requesters' ratings of resolved tickets, one a ticket (the last one given)
    def rate(self, ticket_id: str, rating: dict) -> None:
        self.ratings.replace_one({"_id": ticket_id}, {**rating, "_id": ticket_id}, upsert=True)

    def rating(self, ticket_id: str) -> dict | None:
        return self.ratings.find_one({"_id": ticket_id})

    def ratings_between(self, since: datetime, until: datetime | None, limit: int) -> list[dict]:
        window = {"$gte": since} | ({"$lt": until} if until else {})
        return list(self.ratings.find({"rated_at": window}).sort("rated_at", ASCENDING).limit(limit))

    # saved replies: what agents insert into a reply, by title
    def saved_replies_list(self, limit: int) -> list[dict]:
        return list(self.saved_replies.find().sort("title_key", ASCENDING).limit(limit))

    def saved_reply(self, reply_id: str) -> dict | None:
        return self.saved_replies.find_one({"_id": reply_id})

    def add_saved_reply(self, title: str, body: str, by: str, at: datetime) -> dict:
        """The new saved reply; TitleTaken when another has the same title (whatever its case)."""
        doc = {"_id": uuid.uuid4().hex, "title": title, "title_key": title.casefold(), "body": body,
               "created_by": by, "created_at": at, "updated_at": at, "version": 1}  # fmt: skip
        try:
            self.saved_replies.insert_one(doc)
        except DuplicateKeyError:
            raise TitleTaken(title) from None
        return doc

    def change_saved_reply(self, reply_id: str, title: str, body: str, at: datetime, version: int) -> dict | None:
        """The reply as changed (None: there is none); TitleTaken when another has the title; ChangedMeanwhile when
        it is no longer at `version` (what the form was opened on). The title is asked first: an update that
        breaks the unique index is an OperationFailure of its own on the embedded store, not the DuplicateKeyError
        an insert gets; the index still refuses a rename racing this one."""
        current = self.saved_reply(reply_id)
        if current is None:
            return None
        if current.get("version", 0) != version:
            raise ChangedMeanwhile(reply_id)
        key = title.casefold()
        if self.saved_replies.find_one({"title_key": key, "_id": {"$ne": reply_id}}, {"_id": 1}):
            raise TitleTaken(title)
        change = {"$set": {"title": title, "title_key": key, "body": body, "updated_at": at}, "$inc": {"version": 1}}
        try:
            at_version = version if version else {"$exists": False}  # 0: one saved before replies had versions
            changed = self.saved_replies.find_one_and_update(
                {"_id": reply_id, "version": at_version}, change, return_document=ReturnDocument.AFTER
            )
            if changed is None and self.saved_reply(reply_id) is not None:  # changed between the two
                raise ChangedMeanwhile(reply_id)
            return changed
        except DuplicateKeyError:
            raise TitleTaken(title) from None
        except OperationFailure as failure:  # the embedded store's word for it
            if "UNIQUE constraint" in str(failure):
                raise TitleTaken(title) from None
            raise

    def count_saved_replies(self) -> int:
        return self.saved_replies.count_documents({})

    def delete_saved_reply(self, reply_id: str) -> bool:
        return self.saved_replies.delete_one({"_id": reply_id}).deleted_count == 1

    # accounts
    def add_account(self, email: str, role: str, agent_id: str | None, password_hash: str | None, at: datetime) -> dict:
        doc = {
            "_id": uuid.uuid4().hex,
            "email": email,
            "role": role,
            "agent_id": agent_id,
            "password_hash": password_hash,
            "created_at": at,
        }
        try:
            self.accounts.insert_one(doc)
        except DuplicateKeyError:
            raise AccountExists(email) from None
        return doc

    def account_by_email(self, email: str) -> dict | None:
        return self.accounts.find_one({"email": email})

    def account(self, account_id: str) -> dict | None:
        return self.accounts.find_one({"_id": account_id})

    def list_accounts(self, limit: int = 500, at: datetime | None = None) -> list[dict]:
        """The accounts, each with `has_password` (whether one was ever set) in place of its hash, and `link_waiting`
        (whether a password link of its is still good at `at`, by default now: disabling one ends its links)."""
        found = self.accounts.find({}).sort("email", ASCENDING).limit(limit)
        live = {link["account_id"] for link in self.password_links.find({"expires_at": {"$gt": at or now()}})}
        return [
            _without_hash(account)
            | {"has_password": bool(account.get("password_hash")), "link_waiting": account["_id"] in live}
            for account in found
        ]

    def disabled_agent_ids(self) -> dict[str, str]:
        """The agents whose accounts are all disabled or deleted, each with which ("disabled" while an account of it
        is kept, else "deleted"): nobody signs in to work as them. (One account an agent is the rule, which the pages
        and the API keep; accounts made before it may share an agent, and one of them disabled leaves the agent to
        the others; a new account for a departed agent brings it back.)"""
        found = self.accounts.find({"agent_id": {"$ne": None}}, {"agent_id": 1, "disabled_at": 1})
        gone = dict.fromkeys((doc["_id"] for doc in self.departed.find({}, {"_id": 1})), "deleted")
        enabled = set()
        for account in found:
            if not account.get("agent_id"):
                continue
            if account.get("disabled_at"):
                gone[account["agent_id"]] = "disabled"
            else:
                enabled.add(account["agent_id"])
        return {agent_id: why for agent_id, why in gone.items() if agent_id not in enabled}

    def move_account(self, account_id: str, old: str, new: str) -> bool:
        """The account signs in with `new` in place of `old` (its sessions name it so too): whether it did (False:
        it signs in with another address now). AccountExists when another account has `new`."""
        try:
            moved = self.accounts.update_one({"_id": account_id, "email": old}, {"$set": {"email": new}})
        except DuplicateKeyError:
            raise AccountExists(new) from None
        if moved.modified_count == 1:
            self.sessions.update_many({"account_id": account_id}, {"$set": {"email": new}})
        return moved.modified_count == 1

    def accounts_of_agent(self, agent_id: str) -> list[dict]:
        """The accounts that sign in as this agent (one, as a rule), oldest first."""
        return list(self.accounts.find({"agent_id": agent_id}, {"password_hash": 0}).sort("created_at", ASCENDING))

    def set_disabled(self, account_id: str, at: datetime | None) -> dict | None:
        """Disable the account from `at` on (None: enable it again); the account as it is now, or None."""
        change = {"$set": {"disabled_at": at}} if at is not None else {"$unset": {"disabled_at": ""}}
        change["$inc"] = FORGET_DEVICES  # its browsers are known again only after a new sign-in
        return self.accounts.find_one_and_update({"_id": account_id}, change, return_document=ReturnDocument.AFTER)

    def set_password_hash(self, account_id: str, password_hash: str, at: datetime) -> None:
        """The new password's hash, and when it changed: links and sessions made before then are void."""
        change = {"password_hash": password_hash, "password_changed_at": at}
        self.accounts.update_one({"_id": account_id}, {"$set": change, "$inc": FORGET_DEVICES})

    # sessions
    def add_session(self, token: str, session: dict) -> None:
        self.sessions.insert_one({**session, "_id": digest(token)})

    def session(self, token: str, now: datetime) -> dict | None:
        return self.sessions.find_one({"_id": digest(token), "expires_at": {"$gt": now}})

    def touch_session(self, session_id: str, now: datetime, expires_at: datetime) -> None:
        self.sessions.update_one({"_id": session_id}, {"$set": {"last_seen": now, "expires_at": expires_at}})

    def renew_session(self, session_id: str, token: str, changes: dict, old_ends_at: datetime) -> dict | None:
        """The session under a new id (the digest of `token`) with what it holds and `changes`; the old id lasts
        until `old_ends_at` at most (what the browser sent with it meanwhile still finds its session). None when
        the session ended meanwhile."""
        held = self.sessions.find_one({"_id": session_id})
        if held is None:
            return None
        renewed = {**held, **changes, "_id": digest(token)}
        self.sessions.insert_one(renewed)
        self.sessions.update_one({"_id": session_id, "expires_at": {"$gt": old_ends_at}},
                                 {"$set": {"expires_at": old_ends_at}})  # fmt: skip
        return renewed

    def grant_ticket(self, session_id: str, ticket_id: str, email: str) -> None:
        self.sessions.update_one({"_id": session_id}, {"$addToSet": {"tickets": {"id": ticket_id, "email": email}}})

    def remember_opened(self, session_id: str, digest_of_form: str, ticket_id: str, at: datetime, key: str) -> None:
        """The session opened `ticket_id` from a form with this content (its last few kept) and this form key."""
        opened = {"digest": digest_of_form, "ticket_id": ticket_id, "at": at}
        pushed = {"opened": {"$each": [opened], "$slice": -5}, "form_keys": {"$each": [key], "$slice": -100}}
        self.sessions.update_one({"_id": session_id}, {"$push": pushed})

    def claim_sent(
        self, session_id: str, digest_of_words: str, at: datetime, since: datetime, stale=(), abandoned=None
    ) -> bool:
        """The session sends these words onto a ticket (a message, a reply, a note) now, unless it sent them since
        `since`: whether it is the first, in one write, so that two of the same form sent at once (a double click,
        a retried POST) find each other. The claim is marked going (`going`) until the send ends (`sent_went`), or
        is taken back (`unclaim_sent`); a send still going at `abandoned` or before never ended (its process was
        killed) and is claimed again. `stale`: the digests of earlier sends to forget (older than `since`)."""
        key, going = f"sends.{digest_of_words}", f"going.{digest_of_words}"
        forgotten = [digest for digest in stale if digest != digest_of_words]
        unset = {f"{part}.{digest}": "" for digest in forgotten for part in ("sends", "going")}
        free = [{key: {"$not": {"$gt": since}}}]
        if abandoned is not None:
            free.append({going: {"$lte": abandoned}})
        done = self.sessions.update_one(
            {"_id": session_id, "$or": free},
            {"$set": {key: at, going: at}, **({"$unset": unset} if unset else {})},
        )
        return done.modified_count == 1

    def sent_went(self, session_id: str, digest_of_words: str, at: datetime) -> None:
        """The send claimed at `at` went: the same words sent again are told so."""
        going = f"going.{digest_of_words}"
        self.sessions.update_one({"_id": session_id, going: at}, {"$unset": {going: ""}})

    def unclaim_sent(self, session_id: str, digest_of_words: str, at: datetime) -> None:
        """The send claimed at `at` did not go: the same words may be sent again."""
        self.sessions.update_one(
            {"_id": session_id, f"sends.{digest_of_words}": at},
            {"$unset": {f"sends.{digest_of_words}": "", f"going.{digest_of_words}": ""}},
        )

    def send_state(self, session_id: str, digest_of_words: str, since: datetime) -> str | None:
        """Where the session's send of these words since `since` stands: "going" (claimed, not ended), "went", or
        None (none since then, or taken back)."""
        found = self.sessions.find_one({"_id": session_id}, {"sends": 1, "going": 1}) or {}
        sent = (found.get("sends") or {}).get(digest_of_words)
        if sent is None or sent <= since:
            return None
        return "going" if (found.get("going") or {}).get(digest_of_words) == sent else "went"

    def forget_form_keys(self, keys: list[str], until: datetime) -> None:
        """Forms this browser sent before it forgot its requests: sent again (Back, a reload), they open nothing."""
        for key in keys:
            self.forgotten_keys.update_one({"_id": key}, {"$set": {"expires_at": until}}, upsert=True)

    def form_key_forgotten(self, key: str, now: datetime) -> bool:
        return self.forgotten_keys.find_one({"_id": key, "expires_at": {"$gt": now}}) is not None

    def note_link_followed(self, session_id: str, ticket_id: str) -> None:
        """The session came with a link emailed about the ticket: its first sign of a person confirms the address."""
        self.sessions.update_one({"_id": session_id}, {"$addToSet": {"links_followed": ticket_id}})

    def link_acted_on(self, session_id: str, ticket_id: str) -> None:
        """The person acted on the page the link opened (handlers.confirm_link): its link stays followed (the
        session keeps the request when its address is proven otherwise: a reply by mail, another link)."""
        self.sessions.update_one({"_id": session_id}, {"$addToSet": {"links_acted": ticket_id}})

    def start_merge(self, ticket_ids: tuple[str, str], at: datetime, held_for: timedelta) -> str | None:
        """Hold the pair of tickets for one merge (either way round); None when another merge of the same two is
        under way (started less than `held_for` ago: one whose process died is then taken over). The key to give
        back to `end_merge`."""
        key = "/".join(sorted(ticket_ids))
        try:
            self.merges.insert_one({"_id": key, "at": at})
            return key
        except DuplicateKeyError:
            taken = self.merges.find_one_and_update({"_id": key, "at": {"$lt": at - held_for}}, {"$set": {"at": at}})
            return key if taken is not None else None

    def end_merge(self, key: str) -> None:
        self.merges.delete_one({"_id": key})

    def set_flash(self, session_id: str, kind: str, page: str, flash: dict, at: datetime) -> None:
        """What a page of this session says once, the next time it is drawn (a redirect after a form: a reload does
        not act again). One a `kind` of page ("bulk", "dead", "agent"); `page` names which (an agent's id), so that
        another page, or another agent's, never takes it."""
        self.sessions.update_one({"_id": session_id}, {"$set": {f"flash.{kind}": {**flash, "page": page, "at": at}}})

    def pop_flash(self, session_id: str, kind: str, page: str, now: datetime) -> dict | None:
        """The page's flash, taken: None when there is none for it, or when it is older than FLASH_FOR (a page
        that failed to draw left it, and it no longer says what just happened)."""
        before = self.sessions.find_one_and_update(
            {"_id": session_id, f"flash.{kind}.page": page}, {"$unset": {f"flash.{kind}": ""}}
        )
        flash = ((before or {}).get("flash") or {}).get(kind)
        if flash is None or flash["at"] < now - FLASH_FOR:
            return None
        return flash

    def forget_grants(self, session_id: str) -> None:
        """The session reads no requester's ticket any more (and forgets the forms it sent)."""
        self.sessions.update_one({"_id": session_id}, {"$set": {"tickets": [], "opened": [], "form_keys": []}})

    def end_session(self, session_id: str) -> None:
        self.sessions.delete_one({"_id": session_id})

    def end_sessions_of(self, account_id: str, but: str | None = None) -> None:
        """End every session of the account (`but`: save this one)."""
        self.sessions.delete_many({"account_id": account_id, **({"_id": {"$ne": but}} if but else {})})

    def other_sessions(self, account_id: str, this_one: str, now: datetime) -> int:
        """How many live sessions the account has besides this one (other browsers and computers)."""
        live = {"account_id": account_id, "_id": {"$ne": this_one}, "expires_at": {"$gt": now}}
        return self.sessions.count_documents(live)

    # requesters' addresses proven: someone followed a link emailed to the ticket's address
    def confirm_address(self, ticket_id: str, email: str, at: datetime) -> bool:
        """Note that someone read a link emailed to the ticket's address; whether this was the first time."""
        try:
            done = self.confirmations.update_one(
                {"_id": ticket_id}, {"$setOnInsert": {"email": email, "at": at}}, upsert=True
            )
        except DuplicateKeyError:  # two first confirmations at once: the other one is the first
            return False
        return done.upserted_id is not None

    def drop_grants_without_link(self, grant: dict) -> None:
        """Every session that has the grant without having followed a link to it loses it (they must follow an
        emailed link to see it again). The grant whole, as `grant_ticket` adds it: the embedded store's $pull takes
        a value, not a condition."""
        value = {"id": grant["id"], "email": grant["email"]}
        self.sessions.update_many(
            {"tickets.id": grant["id"], "links_followed": {"$ne": grant["id"]}}, {"$pull": {"tickets": value}}
        )

    def confirmed(self, ticket_id: str) -> dict | None:
        """When someone first followed an emailed link to the ticket (its address is theirs), or None."""
        return self.confirmations.find_one({"_id": ticket_id})

    # sign-in failures
    def add_attempt(self, key: str, at: datetime, keep: int, email: str | None = None) -> tuple[list[datetime], dict]:
        """Count a sign-in attempt under `key` (an email, or a known browser of it) as failed before it is checked
        (atomic, so parallel attempts all count): (the times of the failures before it, the attempt as stored, for
        drop_attempt). Each is stored with a nonce: two in the same millisecond are two (a failure stored as a bare
        time, before, was pulled with a parallel attempt's, which let a sixth password be checked)."""
        attempt = {"at": at, "n": secrets.token_hex(6)}
        doc = self.failures.find_one_and_update(
            {"_id": key},
            {"$push": {"times": {"$each": [attempt], "$slice": -keep}}, "$set": {"last": at, "email": email or key}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        return [time["at"] if isinstance(time, dict) else time for time in (doc or {}).get("times", [])], attempt

    def drop_attempt(self, key: str, attempt: dict) -> None:
        """An attempt refused unchecked (the email was locked) is not a failure of its own: that one alone goes."""
        self.failures.update_one({"_id": key}, {"$pull": {"times": attempt}})

    def clear_failure(self, key: str) -> None:
        """The failed sign-ins counted under one key (failures_key): an email's, or one of its known browsers'."""
        self.failures.delete_one({"_id": key})

    def clear_failures(self, email: str) -> None:
        """The email's failed sign-ins, and those of every browser known to it."""
        self.failures.delete_many({"$or": [{"_id": email}, {"email": email}]})

    def forget_devices(self, account_id: str) -> None:
        """Every device token made for the account so far is void (services/portal/devices.py)."""
        self.accounts.update_one({"_id": account_id}, {"$inc": FORGET_DEVICES})

    # one-time password links
    def new_password_link(self, account_id: str, at: datetime, life: timedelta) -> str:
        """A new one-time link's token to set the account's password (only its digest is stored)."""
        token = secrets.token_urlsafe(32)
        link = {"_id": digest(token), "account_id": account_id, "created_at": at, "expires_at": at + life}
        self.password_links.insert_one(link)
        return token

    def password_link(self, token: str, now: datetime) -> dict | None:
        return self.password_links.find_one({"_id": digest(token), "expires_at": {"$gt": now}})

    def use_password_link(self, token: str, now: datetime) -> dict | None:
        """Take the link (once: a second use finds nothing)."""
        return self.password_links.find_one_and_delete({"_id": digest(token), "expires_at": {"$gt": now}})

    def end_password_links_of(self, account_id: str) -> None:
        self.password_links.delete_many({"account_id": account_id})

    def delete_account(self, account_id: str) -> bool:
        """The account gone with its sessions, password links and failed sign-ins (whether there was one)."""
        account = self.account(account_id)
        if account is None:
            return False
        self.end_sessions_of(account_id)
        self.end_password_links_of(account_id)
        self.clear_failures(account["email"])
        if account.get("agent_id"):  # its agent stays in assignment (its work keeps its name): nobody works as it
            self.departed.update_one({"_id": account["agent_id"]}, {"$set": {"at": now()}}, upsert=True)
        return self.accounts.delete_one({"_id": account_id}).deleted_count == 1

    # welcome emails of new accounts: the worker sends them, each with a link of its own
    def add_welcome(self, account_id: str, email: str, at: datetime, name: str | None = None) -> None:
        self.welcomes.insert_one(
            {"_id": uuid.uuid4().hex, "account_id": account_id, "email": email, "name": name, "state": "pending",
             "created_at": at}
        )  # fmt: skip

    # "Forgot your password?": the worker emails a link when the address is an account's
    def add_password_reset(self, email: str, at: datetime) -> None:
        self.password_resets.insert_one({"_id": uuid.uuid4().hex, "email": email, "state": "pending", "created_at": at})

    # what an account's person is told by email (their password changed, an admin made a link for them)
    def add_account_notice(self, email: str, kind: str, at: datetime, **about: str) -> None:
        """`about`: what the notice's words name (`account_id`: the account it is about, when `email` is no longer
        its address; `address`: its new one)."""
        self.account_notices.insert_one(
            {"_id": uuid.uuid4().hex, "email": email, "kind": kind, "at": at, "state": "pending", "created_at": at,
             **about}
        )  # fmt: skip

    # rate limits: fixed windows
    def count_hit(self, key: str, window_start: datetime, window: timedelta) -> int:
        """Count one more hit of `key` in the window that began at `window_start`; the count so far."""
        doc = self.limits.find_one_and_update(
            {"_id": f"{key}|{window_start.isoformat()}"},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": window_start + window}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["count"])

    def uncount_hit(self, key: str, window_start: datetime) -> None:
        """Take back one hit of `key` counted in the window that began at `window_start` (count_hit's)."""
        self.limits.update_one({"_id": f"{key}|{window_start.isoformat()}"}, {"$inc": {"count": -1}})

    # forms that must not act twice (a reload of the page a POST answered sends it again)
    def form_used(self, key: str) -> bool:
        return self.limits.find_one({"_id": f"form:{digest(key)}"}) is not None

    def use_form(self, key: str, expires_at: datetime) -> None:
        self.limits.update_one({"_id": f"form:{digest(key)}"}, {"$set": {"expires_at": expires_at}}, upsert=True)

    # check-status requests: the worker answers them, so the page answers the same whatever they hold
    def add_status_request(self, email: str, number: int | None, at: datetime) -> None:
        self.status_requests.insert_one(
            {"_id": uuid.uuid4().hex, "email": email, "number": number, "state": "pending", "created_at": at}
        )

    # the worker's jobs (check-status requests, welcome emails): each taken by one worker at a time
    def take_job(self, queue: str, now: datetime, stale_after: timedelta) -> dict | None:
        """The oldest job due that nobody has (or whose taker died `stale_after` ago), now taken."""
        due = {"$or": [{"next_at": {"$exists": False}}, {"next_at": {"$lte": now}}]}
        return self.db[queue].find_one_and_update(
            {"$or": [{"state": "pending", **due}, {"state": "taken", "taken_at": {"$lte": now - stale_after}}]},
            {"$set": {"state": "taken", "taken_at": now}, "$inc": {"attempts": 1}},
            sort=[("created_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    def retry_job(self, queue: str, job_id: str, next_at: datetime) -> None:
        """Give a job that failed back, to be taken again from `next_at` on."""
        self.db[queue].update_one({"_id": job_id, "state": "taken"}, {"$set": {"state": "pending", "next_at": next_at}})

    def finish_job(self, queue: str, job_id: str, outcome: str, at: datetime) -> None:
        self.db[queue].update_one({"_id": job_id}, {"$set": {"state": outcome, "finished_at": at}})

    # presence: who has a ticket open
    def seen(self, ticket_id: str, account_id: str, name: str, at: datetime) -> None:
        self.presence.update_one(
            {"_id": f"{ticket_id}|{account_id}"},
            {"$set": {"ticket_id": ticket_id, "account_id": account_id, "name": name, "seen_at": at}},
            upsert=True,
        )

    def present(self, ticket_id: str, since: datetime) -> list[dict]:
        return list(self.presence.find({"ticket_id": ticket_id, "seen_at": {"$gt": since}}).sort("name", ASCENDING))

    def leave(self, ticket_id: str, account_id: str) -> None:
        self.presence.delete_one({"_id": f"{ticket_id}|{account_id}"})

    def purge(self, now: datetime, presence_before: datetime, requests_before: datetime) -> None:
        """Forget expired sessions, links and windows, old presence, answered requests and stale failures."""
        for collection in (self.sessions, self.password_links, self.limits, self.forgotten_keys):
            collection.delete_many({"expires_at": {"$lte": now}})
        self.presence.delete_many({"seen_at": {"$lte": presence_before}})
        self.status_requests.delete_many(
            {"state": {"$in": ["sent", "no-match", "failed"]}, "created_at": {"$lte": requests_before}}
        )
        self.welcomes.delete_many({"state": {"$in": ["sent", "failed"]}, "created_at": {"$lte": requests_before}})
        finished = {"$in": ["sent", "no-account", "superseded", "failed"]}
        for jobs in (self.password_resets, self.account_notices):
            jobs.delete_many({"state": finished, "created_at": {"$lte": requests_before}})
        self.failures.delete_many({"last": {"$lte": requests_before}})


def _without_hash(account: dict) -> dict:
    return {key: value for key, value in account.items() if key != "password_hash"}
