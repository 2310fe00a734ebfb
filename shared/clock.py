"""The one clock every service reads: now, in UTC, to the millisecond (what BSON stores); the time zones a
business calendar may be in; and a moment as an email to people writes it, in the desk's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

# Files of the zone database that name no place: the host's own zone (a link that slim images lack), a zone with no
# offset, the database's defaults, and its variants' folders. A calendar in one of them worked on one host and
# stopped every clock on another (a reviewer's find).
NOT_A_PLACE = ("localtime", "Factory", "posixrules")
NOT_A_PLACE_FOLDERS = ("posix/", "right/")


def now() -> datetime:
    """Now, in UTC, truncated to the millisecond."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@cache
def zone_names() -> frozenset[str]:
    """The time zones a calendar may be in: the zone database's places (sla's rule, and the portal's form's)."""
    return frozenset(
        name for name in available_timezones() if name not in NOT_A_PLACE and not name.startswith(NOT_A_PLACE_FOLDERS)
    )


def written(moment: datetime, time_zone: str = "UTC") -> str:
    """27 Nov 2026, 10:30 CET: the moment in `time_zone` (an IANA name, the desk's TICKETFLOW_TIME_ZONE) with the
    zone's abbreviation, as the portal's pages write a time; a naive datetime (the store's) is taken as UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%-d %b %Y, %H:%M %Z")
