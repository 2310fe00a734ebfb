"""The headers of an inbound email that intake reads: who sent it, its subject and ids, the tickets it answers,
and whether a machine sent it. Each read with a parser that stays fast on the longest value it is given."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from services.intake.inbound_mime import MAX_STRUCTURED_HEADER, POLICY, clean, one_line, unfold_8bit, unique, words
from shared.smtp import OWN_MESSAGE_DOMAIN  # the right of @ in notify's Message-IDs

MAX_LIST_HEADER = 65536  # To, Cc, References: long in real threads, read with linear parsers
_TICKET_REFERENCE = re.compile(
    rf"(?:ticket-(?P<own>[A-Za-z0-9._-]+)|.*\+(?P<notification>[A-Za-z0-9._-]+))@{OWN_MESSAGE_DOMAIN}", re.IGNORECASE
)
_ADDRESS = re.compile(r"[^\s<>,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+")
_ANGLED = re.compile(r"<\s*([^\s<>,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+)\s*>")
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# what auto-replies that carry none of the headers above begin their subject with (Outlook's and the usual
# vacation responders', in the languages a desk sees most), a colon included: "Out of office" alone may be a person
_AUTOMATIC_SUBJECT = re.compile(  # older Exchange writes "Out of Office AutoReply:", Portuguese "Resposta automática:"
    r"(?:automatic reply|auto[- ]?reply|autoreply|out of (?:the )?office(?: auto[- ]?reply)?|abwesenheitsnotiz"
    r"|automatische antwort|réponse automatique|respuesta automática|risposta automatica|resposta automática"
    r"|automatisch antwoord|afwezig|frånvaromeddelande|automatisk svar|automaattinen vastaus)\s*:",
    re.IGNORECASE,
)
_OUTLOOK_SUPPRESS = frozenset({"all", "oof", "autoreply"})
Headers = dict[str, list[str]]  # raw values by lowercase name (inbound_mime.raw_headers)


def first(headers: Headers, name: str, limit: int = MAX_LIST_HEADER, defects: list[str] | None = None) -> str | None:
    values = headers.get(name)
    return unfold_8bit(values[0][:limit], f"{name.title()} header", defects) if values else None


def message_id(headers: Headers) -> str | None:
    value = first(headers, "message-id", MAX_STRUCTURED_HEADER)
    if value is None:
        return None
    bracketed = re.search(r"<([^<>]*)>", value)
    found = "".join(one_line(bracketed.group(1) if bracketed else value).split()).strip("<>")
    return found or None


def from_address(headers: Headers, defects: list[str]) -> tuple[str, str]:
    """(address, name) of the mail's one sender in From; the stdlib's modern parser, its legacy one if that fails.

    No address ("") when From does not name one sender beyond doubt: several From headers or addresses, a broken
    From that holds more than one address (`ana@example.com <evil@attacker.example>`: the stdlib reads the first,
    a DMARC checker the one in angle brackets, so the desk would believe a domain the check never saw), or an
    address a case fold would turn into another (the Kelvin sign K lower-cases to k). Such a mail is kept for the
    agents, never posted as a requester."""
    values = headers.get("from") or []
    value = first(headers, "from", MAX_STRUCTURED_HEADER, defects)
    if value is None:
        return "", ""
    header = POLICY.header_factory("from", value)
    broken = bool(header.defects)
    defects.extend(f"From header: {words(defect)}" for defect in header.defects)
    pairs = []
    try:
        pairs = [(address.display_name, address.addr_spec) for address in header.addresses]
    except Exception:
        broken = True
        try:
            pairs = getaddresses([value])
        except Exception:
            pairs = [("", found) for found in _ADDRESS.findall(value)]
    cleaned = [("".join(one_line(address).split()), one_line(name)) for name, address in pairs]
    found = [(address, name) for address, name in cleaned if "@" in address]
    if not found:
        return "", cleaned[0][1] if cleaned else ""
    address, name = found[0]
    if broken and len(angled := {each.lower(): each for each in _ANGLED.findall(value)}) == 1:
        (address,) = angled.values()  # `John Smith john@x.com <john@x.com>`: what a DMARC check reads too
    if why := _not_one_sender(values, value, broken, {each.lower() for each, _ in found}, address):
        defects.append(f"From header: {why}: no sender is believed")
        return "", name
    return address.lower(), name or name_of_address(address.rpartition("@")[0])


def _not_one_sender(values: list[str], value: str, broken: bool, addresses: set[str], address: str) -> str | None:
    if len(values) > 1 and len({value.strip().lower() for value in values}) > 1:
        return f"{len(values)} From headers"
    if len(addresses) > 1:
        return f"{len(addresses)} addresses"
    if broken and len({found.lower() for found in _ADDRESS.findall(value)}) > 1:
        return "more than one address in a From that does not parse"
    if {found.lower() for found in _ANGLED.findall(value)} - {address.lower()}:  # `a@x (<evil@y>)`: read by some
        return "another address in angle brackets"
    if any(not char.isascii() and char.lower().isascii() for char in address):
        return "an address that a case fold turns into another"
    return None


_NAME_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*(?:[._][^\W\d_]+(?:-[^\W\d_]+)*){1,3}")


def name_of_address(local: str) -> str:
    """A person's name from the part of their address before the @, for a mail that gives none: two to four words
    of letters between dots or underscores are a name ("noah.fischer" is Noah Fischer, "jean-luc_picard"
    Jean-Luc Picard), each word's first letter made capital; anything else stays as it is ("jsmith", "it-support2"):
    the greeting of every email to the requester uses it."""
    if not _NAME_WORDS.fullmatch(local):
        return local
    words = re.split(r"[._]", local)
    return " ".join("-".join(part[:1].upper() + part[1:] for part in word.split("-")) for word in words)


def subject(headers: Headers, defects: list[str]) -> str:
    value = first(headers, "subject", defects=defects)
    if value is None:
        return ""
    header = POLICY.header_factory("subject", value)
    defects.extend(f"Subject header: {words(defect)}" for defect in header.defects)
    return one_line(str(header))


MAX_RECIPIENTS = 100  # addresses of To and Cc kept with a mail (its record must stay a document's size)
MAX_ADDRESS_HEADERS = 10  # To and Cc headers read, each (a mail of 400 To headers took 18 s and made no record)


def to_and_cc(headers: Headers) -> tuple[str, ...]:
    """The first MAX_RECIPIENTS addresses in To and Cc (a linear parser: these lists can be long), when the caller
    gave none."""
    found: list[str] = []
    for value in (*headers.get("to", ())[:MAX_ADDRESS_HEADERS], *headers.get("cc", ())[:MAX_ADDRESS_HEADERS]):
        value = unfold_8bit(value[:MAX_LIST_HEADER])
        try:
            found += [address for _, address in getaddresses([value])]
        except Exception:  # RecursionError on some junk: what looks like an address
            found += _ADDRESS.findall(value)
    addresses = unique(address for address in ("".join(one_line(a).split()).lower() for a in found) if "@" in address)
    return tuple(addresses)[:MAX_RECIPIENTS]


def references(headers: Headers) -> tuple[str, ...]:
    found: list[str] = []
    for value in (*headers.get("in-reply-to", ()), *headers.get("references", ())):
        value = clean(value[:MAX_LIST_HEADER])
        ids = re.findall(r"<([^<>\s]+)>", value) or [token.strip("<>,") for token in value.split() if "@" in token]
        found += [one_line(message_id) for message_id in ids]
    return tuple(unique(found))


def ticket_ids(references: tuple[str, ...]) -> tuple[str, ...]:
    """Ticket ids in our Message-IDs: <ticket-{id}@ticketflow> and <{notification}+{id}@ticketflow>."""
    matches = (_TICKET_REFERENCE.fullmatch(reference) for reference in references)
    return tuple(unique(found.group("own") or found.group("notification") for found in matches if found))


def automatic(message: Message, headers: Headers, sender: str, envelope: str, own: frozenset[str]) -> str | None:
    """Why no ticket may open and no receipt go out (RFC 3834 and what mail servers and lists really send)."""
    for address in (sender, envelope.lower()):
        if address and address in own:
            return f"from our own address {address} (a mail loop)"
        if address.partition("@")[0] in ("mailer-daemon", "postmaster"):
            return f"a bounce from {address}"
    if not envelope:
        return "a bounce: the envelope sender is empty (<>)"
    if message.get_content_type() == "multipart/report":
        if (message.get_param("report-type") or "").lower() == "disposition-notification":
            return "a read report (multipart/report)"
        return "a delivery report, a bounce (multipart/report)"
    value = first(headers, "auto-submitted", 200)
    if value is not None and value.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {one_line(value)}"
    precedence = (first(headers, "precedence", 200) or "").strip().lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name, label in (("x-autoreply", "X-Autoreply"), ("x-autorespond", "X-Autorespond")):
        if name in headers:
            return f"an auto-reply ({label})"
    suppress = first(headers, "x-auto-response-suppress", 200) or ""
    if _OUTLOOK_SUPPRESS & {token.lower() for token in re.split(r"[\s,;]+", suppress)}:
        return f"an Outlook auto-reply (X-Auto-Response-Suppress: {one_line(suppress)})"
    for name, label in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if name in headers:
            return f"a mailing list ({label})"
    return None


def answers_our_mail(references: tuple[str, ...]) -> bool:
    """Whether the mail answers one of the help desk's own mails (notify's, or the portal's sign-in and link
    mails): In-Reply-To or References names a Message-ID of ours."""
    return any(reference.lower().endswith(f"@{OWN_MESSAGE_DOMAIN}") for reference in references)


def auto_reply_by_subject(said: str) -> str | None:
    """Why a mail that names a ticket, or answers one of our mails, is an auto-reply by its subject alone (vacation
    responders that send none of the headers `automatic` reads); None otherwise. Only for such a mail: a new mail
    titled "Automatic reply: not sent outside" is a person asking about Outlook's feature."""
    if _AUTOMATIC_SUBJECT.match(said):
        return f"an auto-reply by its subject ({said[:60]})"
    return None


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\([^()]*\)")
_RESINFO = re.compile(r"\s*([A-Za-z0-9_-]+)(?:/[0-9]+)?\s*=\s*([A-Za-z]+)")


def authentication_results(headers: Headers) -> tuple[tuple[str, str, str], ...]:
    """(authserv-id, method, result) of each method each Authentication-Results header (RFC 8601) reports, lowercased,
    in order: ("mx.help.example.com", "dmarc", "fail"). Comments and quoted values are left out; what does not
    read as a result is skipped. Every header is read (each up to MAX_LIST_HEADER characters): an MTA may add its
    own below the sender's, and a sender could put any number of its own above it."""
    found = []
    for value in headers.get("authentication-results", ()):
        value = _QUOTED.sub('""', one_line(value[:MAX_LIST_HEADER]))
        for _ in range(3):  # comments nest
            value = _COMMENT.sub(" ", value)
        server, _, results = value.partition(";")
        if not server.split():
            continue
        authserv = server.split()[0].lower()
        for resinfo in results.split(";"):
            if matched := _RESINFO.match(resinfo):
                found.append((authserv, matched.group(1).lower(), matched.group(2).lower()))
    return tuple(found)
