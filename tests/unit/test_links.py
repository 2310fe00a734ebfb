"""Requesters' access links (shared/links.py) and their settings: a link opens one ticket of one requester,
until it expires, and is never an API bearer token (nor is a bearer token ever a link)."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from shared.auth import AuthError, decode_token, issue_token
from shared.config import ConfigError, load_settings
from shared.links import LINK_PATH, LinkError, link_url, mint_link_token, read_link_token
from shared.redact import HIDDEN, redact_tokens

SECRET = "k" * 32
OTHER = "o" * 32
NOW = 1_700_000_000.0  # a fixed past moment (PyJWT still refuses an iat ahead of the real clock)
DAY = 86400


def test_a_link_token_reads_back_to_its_ticket_address_and_expiry():
    token = mint_link_token(SECRET, "t-42", "ana@example.com", 30, now=NOW)

    link = read_link_token(SECRET, token, now=NOW + 29 * DAY)

    assert (link.ticket_id, link.email, link.expires_at) == ("t-42", "ana@example.com", int(NOW) + 30 * DAY)
    assert read_link_token(SECRET, mint_link_token(SECRET, "t-42", "ana@example.com", 30)).ticket_id == "t-42"


def test_the_address_is_kept_in_lowercase_without_blanks():
    token = mint_link_token(SECRET, "t-42", "  Ana.Ruiz@Example.COM ", 30)

    assert read_link_token(SECRET, token).email == "ana.ruiz@example.com"


def test_two_mints_for_the_same_ticket_and_address_differ():
    first = mint_link_token(SECRET, "t-42", "ana@example.com", 30, now=NOW)
    second = mint_link_token(SECRET, "t-42", "ana@example.com", 30, now=NOW)

    assert first != second  # a random id in each: one email's link is not another's
    assert read_link_token(SECRET, first, now=NOW) == read_link_token(SECRET, second, now=NOW)


def test_an_expired_link_is_refused():
    token = mint_link_token(SECRET, "t-42", "ana@example.com", 30, now=NOW)

    with pytest.raises(LinkError, match="expired"):
        read_link_token(SECRET, token, now=NOW + 30 * DAY)
    with pytest.raises(LinkError):
        read_link_token(SECRET, mint_link_token(SECRET, "t-42", "ana@example.com", 1, now=time.time() - 2 * DAY))


def _tampered(token: str) -> list[str]:
    """The token with a changed payload (another ticket) and with a changed signature."""
    header, payload, signature = token.split(".")
    other = mint_link_token(SECRET, "t-other", "eve@example.com", 30, now=NOW).split(".")[1]
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    return [f"{header}.{other}.{signature}", f"{header}.{payload}.{flipped}", f"{header}.{payload}.", token[:-10]]


def test_a_tampered_token_is_refused():
    token = mint_link_token(SECRET, "t-42", "ana@example.com", 30, now=NOW)

    for bad in _tampered(token):
        with pytest.raises(LinkError):
            read_link_token(SECRET, bad, now=NOW)


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "x" * 3000])
def test_garbage_is_refused(token):
    with pytest.raises(LinkError):
        read_link_token(SECRET, token)


def test_a_token_signed_with_another_secret_is_refused():
    with pytest.raises(LinkError):
        read_link_token(SECRET, mint_link_token(OTHER, "t-42", "ana@example.com", 30))


@pytest.mark.parametrize(
    "bearer",
    [
        {"role": "admin"},
        {"role": "agent", "agent_id": "jane"},
        {"role": "portal", "requester_email": "ana@example.com", "ticket_id": "t-42"},
    ],
    ids=["admin", "agent", "requester-scoped-portal"],
)
def test_an_api_bearer_token_is_not_a_link(bearer):
    with pytest.raises(LinkError):
        read_link_token(SECRET, issue_token(SECRET, **bearer))


def test_a_link_token_is_not_an_api_bearer_token():
    with pytest.raises(AuthError):
        decode_token(SECRET, mint_link_token(SECRET, "t-42", "ana@example.com", 30))


def test_the_url_is_the_portal_s_base_then_the_token():
    assert link_url("https://help.example.com", "abc") == f"https://help.example.com{LINK_PATH}abc"
    assert link_url("https://help.example.com/", "abc") == "https://help.example.com/t/abc"


def test_a_link_s_token_is_hidden_from_readers_of_the_email_body():
    url = link_url("https://help.example.com", mint_link_token(SECRET, "t-42", "ana@example.com", 30))
    body = f"See your ticket, reply or close it:\n{url}\n\nThe help desk\n"

    shown = redact_tokens(body)

    assert shown == f"See your ticket, reply or close it:\nhttps://help.example.com/t/{HIDDEN}\n\nThe help desk\n"
    assert (
        redact_tokens('<a href="x">eyJ-is-not.a token</a> at 10.20.30')
        == '<a href="x">eyJ-is-not.a token</a> at 10.20.30'
    )


def test_a_link_a_mail_client_rewrote_has_its_token_hidden_too():
    """Outlook's Safe Links (and other rewriters) percent-encode the link into their own: the token follows "%2F",
    where no word boundary is, and its dots may be encoded as well."""
    token = mint_link_token(SECRET, "t-42", "ana@example.com", 30)
    url = quote(link_url("https://help.example.com", token), safe="")
    rewritten = f"https://eur01.safelinks.protection.outlook.com/?url={url}&data=05%7C02"
    dots = rewritten.replace(".", "%2E")

    for text in (rewritten, dots, f"https://x.example/?token={token}"):
        shown = redact_tokens(f"Quoted: {text} thanks")
        assert HIDDEN in shown and not any(part in shown for part in token.split("."))


def test_a_link_with_its_token_s_letters_percent_encoded_has_it_hidden():
    """The portal reads the path decoded, so /t/%65yJ... opens the request as /t/eyJ... does."""
    token = mint_link_token(SECRET, "t-42", "ana@example.com", 30)
    first = f"https://help.example.com/t/%65{token[1:]}"
    every = "https://help.example.com/t/" + "".join(f"%{ord(c):02X}" for c in token)

    for text in (first, every, f"({first})", f"<{every}>"):
        shown = redact_tokens(f"My earlier request: {text} still open.")
        assert shown.startswith("My earlier request: ") and shown.endswith(" still open.")
        assert HIDDEN in shown and token[12:40] not in shown and "%65yJ" not in shown
    # only the token's characters change: what the link encodes besides stays encoded (a line break, a bidi mark)
    tail = "%0D%0ABcc:%20x%E2%80%AEtxt.exe?utm=a%26b%20c"
    assert redact_tokens(f"See {first}{tail}") == f"See https://help.example.com/t/{HIDDEN}{tail}"
    for before in ("100%", "https://help.example.com/a%2/"):  # a "%" not followed by two hex digits, earlier
        assert redact_tokens(f"{before}{first}") == f"{before}https://help.example.com/t/{HIDDEN}"
    assert redact_tokens("100% sure, 50%20off, a %zz and https://x.example/a%20b") == (
        "100% sure, 50%20off, a %zz and https://x.example/a%20b"  # decoded only where that shows a token
    )


def test_words_with_eyj_inside_them_are_no_tokens():
    for text in ("surveyJS.min.js is loaded", "turkeyJerky.example.com", "see keyJSON.parse.result"):
        assert redact_tokens(text) == text


# --- the settings: TICKETFLOW_PORTAL_URL and TICKETFLOW_LINK_DAYS --------------------------------------


def test_the_portal_url_and_link_days_default_to_the_contract():
    settings = load_settings({})

    assert (settings.portal_url, settings.link_days) == ("http://127.0.0.1:8000", 30.0)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("https://help.example.com/", "https://help.example.com"),
        ("https://help.example.com", "https://help.example.com"),
        ("http://127.0.0.1:8000//", "http://127.0.0.1:8000"),
        (" https://example.com/help/ ", "https://example.com/help"),
    ],
)
def test_the_portal_url_loses_its_trailing_slash(raw, kept):
    assert load_settings({"TICKETFLOW_PORTAL_URL": raw}).portal_url == kept


@pytest.mark.parametrize(
    "raw",
    [
        "help.example.com",
        "ftp://help.example.com",
        "javascript:alert(1)",
        "https://",
        "https://help.example.com/?next=x",
        "https://help.example.com/#top",
    ],
)
def test_a_portal_url_that_is_not_an_http_base_url_stops_the_process(raw):
    with pytest.raises(ConfigError, match="TICKETFLOW_PORTAL_URL"):
        load_settings({"TICKETFLOW_PORTAL_URL": raw})


def test_link_days_are_read_and_may_be_fractional():
    assert load_settings({"TICKETFLOW_LINK_DAYS": "7"}).link_days == 7.0
    assert load_settings({"TICKETFLOW_LINK_DAYS": "0.5"}).link_days == 0.5


@pytest.mark.parametrize("raw", ["0", "-3", "soon", "inf", "nan"])
def test_link_days_must_be_a_positive_number(raw):
    with pytest.raises(ConfigError, match="TICKETFLOW_LINK_DAYS"):
        load_settings({"TICKETFLOW_LINK_DAYS": raw})


def test_trusted_proxies_is_a_count_from_zero():
    from shared.config import ConfigError, load_settings

    assert load_settings({}).trusted_proxies == 0
    assert load_settings({"TICKETFLOW_TRUSTED_PROXIES": "2"}).trusted_proxies == 2
    for bad in ("-1", "one", "1.5"):
        with pytest.raises(ConfigError, match="TICKETFLOW_TRUSTED_PROXIES"):
            load_settings({"TICKETFLOW_TRUSTED_PROXIES": bad})
