"""sla business time: hand-worked deadlines (weekends, holidays, DST), calendar validation, and properties."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sla.business_time import (
    DAYS,
    END_OF_DAY,
    Calendar,
    CalendarError,
    add_business_minutes,
    business_seconds_between,
    is_open,
    parse_calendar,
)

MADRID_TZ = ZoneInfo("Europe/Madrid")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EVERY_DAY = (*WEEKDAYS, "sat", "sun")
US = 1e-6  # one microsecond, in seconds


def calendar(timezone: str, days, periods, holidays=(), id="test") -> Calendar:
    return parse_calendar(id, {"timezone": timezone, "hours": {d: periods for d in days}, "holidays": list(holidays)})


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


MADRID = calendar("Europe/Madrid", WEEKDAYS, [["09:00", "17:00"]], ["2026-01-06", "2026-12-25", "2027-01-01"])
MADRID_DAILY = calendar("Europe/Madrid", EVERY_DAY, [["09:00", "17:00"]])  # so the DST Sundays are business days
MADRID_NIGHT = calendar("Europe/Madrid", EVERY_DAY, [["00:00", "06:00"]])  # the DST changes fall inside it
MADRID_GAP = calendar("Europe/Madrid", EVERY_DAY, [["02:30", "05:00"]])  # starts inside the changed hour
NEW_YORK = calendar("America/New_York", WEEKDAYS, [["14:00", "18:00"], ["09:00", "13:00"]])
ALWAYS = Calendar.always()


# --- hand-worked deadlines (Madrid is UTC+1 in winter, UTC+2 in summer) -----------------------------


def test_a_friday_1630_ticket_with_60_minutes_is_due_monday_0930():
    # Fri 2026-11-27 16:30 CET = 15:30 UTC: 30 min until 17:00, weekend, Mon 09:00 CET + 30 min.
    due = add_business_minutes(MADRID, utc(2026, 11, 27, 15, 30), 60)
    assert due == utc(2026, 11, 30, 8, 30)
    assert due.astimezone(MADRID_TZ).replace(tzinfo=None) == datetime(2026, 11, 30, 9, 30)
    assert due.tzinfo is UTC


def test_a_holiday_is_skipped():
    # Thu 2026-12-24 16:30 CET: 30 min that day; Fri 25 is a holiday; Mon 28 09:30 CET = 08:30 UTC.
    assert add_business_minutes(MADRID, utc(2026, 12, 24, 15, 30), 60) == utc(2026, 12, 28, 8, 30)
    without_holiday = calendar("Europe/Madrid", WEEKDAYS, [["09:00", "17:00"]])
    assert add_business_minutes(without_holiday, utc(2026, 12, 24, 15, 30), 60) == utc(2026, 12, 25, 8, 30)
    # Thu 09:00 CET to Mon 17:00 CET: Thursday and Monday only.
    assert business_seconds_between(MADRID, utc(2026, 12, 24, 8), utc(2026, 12, 28, 16)) == 16 * 3600


def test_the_spring_forward_day_keeps_a_daytime_period_whole():
    # Sat 2026-03-28 16:00 CET = 15:00 UTC: 60 min until 17:00 CET (16:00 UTC). Sun 29: clocks go
    # 02:00 CET -> 03:00 CEST at 01:00 UTC; opens 09:00 CEST = 07:00 UTC; + 60 min = 08:00 UTC.
    assert add_business_minutes(MADRID_DAILY, utc(2026, 3, 28, 15), 120) == utc(2026, 3, 29, 8)
    # 09:00-17:00 CEST is 07:00-15:00 UTC: still eight hours.
    assert business_seconds_between(MADRID_DAILY, utc(2026, 3, 29, 0), utc(2026, 3, 30, 0)) == 8 * 3600


def test_the_spring_forward_day_shortens_a_period_that_holds_the_skipped_hour():
    # 00:00 CET (Sat 23:00 UTC) to 06:00 CEST (04:00 UTC) is five hours.
    assert business_seconds_between(MADRID_NIGHT, utc(2026, 3, 28, 23), utc(2026, 3, 29, 4)) == 5 * 3600
    # Two hours after 00:00 CET is 01:00 UTC, when the wall clock jumps to 03:00 CEST.
    due = add_business_minutes(MADRID_NIGHT, utc(2026, 3, 28, 23), 120)
    assert due == utc(2026, 3, 29, 1)
    assert due.astimezone(MADRID_TZ).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)
    # 300 minutes end exactly at 06:00 CEST; one more is 00:01 CEST Monday (Sun 22:01 UTC).
    assert add_business_minutes(MADRID_NIGHT, utc(2026, 3, 28, 23), 300) == utc(2026, 3, 29, 4)
    assert add_business_minutes(MADRID_NIGHT, utc(2026, 3, 28, 23), 301) == utc(2026, 3, 29, 22, 1)


def test_a_period_that_starts_in_the_skipped_hour_opens_when_the_clocks_jump():
    # 02:30 does not exist on 2026-03-29: opens 03:00 CEST (01:00 UTC), closes 05:00 CEST (03:00 UTC).
    assert not is_open(MADRID_GAP, utc(2026, 3, 29, 0, 59, 59))
    assert is_open(MADRID_GAP, utc(2026, 3, 29, 1))
    assert business_seconds_between(MADRID_GAP, utc(2026, 3, 29, 0), utc(2026, 3, 29, 6)) == 2 * 3600
    assert add_business_minutes(MADRID_GAP, utc(2026, 3, 28, 12), 30) == utc(2026, 3, 29, 1, 30)


def test_the_fall_back_day_keeps_a_daytime_period_whole():
    # Sat 2026-10-24 16:00 CEST = 14:00 UTC: 60 min until 17:00 CEST (15:00 UTC). Sun 25: clocks go
    # 03:00 CEST -> 02:00 CET at 01:00 UTC; opens 09:00 CET = 08:00 UTC; + 60 min = 09:00 UTC.
    assert add_business_minutes(MADRID_DAILY, utc(2026, 10, 24, 14), 120) == utc(2026, 10, 25, 9)
    assert business_seconds_between(MADRID_DAILY, utc(2026, 10, 25, 0), utc(2026, 10, 26, 0)) == 8 * 3600


def test_the_fall_back_day_lengthens_a_period_that_holds_the_repeated_hour():
    # 00:00 CEST (Sat 22:00 UTC) to 06:00 CET (05:00 UTC) is seven hours.
    assert business_seconds_between(MADRID_NIGHT, utc(2026, 10, 24, 22), utc(2026, 10, 25, 5)) == 7 * 3600
    # Three hours after 00:00 CEST is 01:00 UTC: the second 02:00 (CET, fold=1).
    due = add_business_minutes(MADRID_NIGHT, utc(2026, 10, 24, 22), 180)
    assert due == utc(2026, 10, 25, 1)
    local = due.astimezone(MADRID_TZ)
    assert (local.hour, local.minute, local.fold) == (2, 0, 1)
    # 02:30-05:00 is open from the first 02:30 (CEST, 00:30 UTC) to the first 03:00 (01:00 UTC, when the
    # clocks go back to 02:00), closed while they show 02:00-02:30 again, open from the second 02:30
    # (CET, 01:30 UTC) to 05:00 CET (04:00 UTC): 3 h.
    assert business_seconds_between(MADRID_GAP, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 3 * 3600
    assert is_open(MADRID_GAP, utc(2026, 10, 25, 0, 30)) and not is_open(MADRID_GAP, utc(2026, 10, 25, 4))
    assert not is_open(MADRID_GAP, utc(2026, 10, 25, 1, 15)) and is_open(MADRID_GAP, utc(2026, 10, 25, 1, 30))
    assert add_business_minutes(MADRID_GAP, utc(2026, 10, 25, 0, 45), 30) == utc(2026, 10, 25, 1, 45)


def test_the_repeated_hour_is_open_or_closed_on_each_pass_as_the_clock_shows():
    # 00:00-02:20 and 02:40-06:00: the clocks show 02:20-02:40 twice on 2026-10-25 (00:20-00:40 and
    # 01:20-01:40 UTC), closed both times: 7 h less 40 min. 02:10-02:20 is shown twice: 20 min, not 70.
    split = calendar("Europe/Madrid", ["sun"], [["00:00", "02:20"], ["02:40", "06:00"]])
    assert business_seconds_between(split, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == (7 * 60 - 40) * 60
    assert not is_open(split, utc(2026, 10, 25, 0, 30)) and not is_open(split, utc(2026, 10, 25, 1, 30))
    assert is_open(split, utc(2026, 10, 25, 1)) and is_open(split, utc(2026, 10, 25, 1, 40))
    # From the first 02:10 (00:10 UTC): 10 min to 02:20, closed to 02:40 (00:40 UTC), 10 more.
    assert add_business_minutes(split, utc(2026, 10, 25, 0, 10), 20) == utc(2026, 10, 25, 0, 50)
    short = calendar("Europe/Madrid", ["sun"], [["02:10", "02:20"]])
    assert business_seconds_between(short, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 20 * 60
    assert add_business_minutes(short, utc(2026, 10, 24, 12), 15) == utc(2026, 10, 25, 1, 15)


def test_adjacent_periods_count_the_repeated_hour_once():
    # 00:00-02:30 ends at the second 02:30 (CET, 01:30 UTC); 02:30-06:00 starts at the first (CEST,
    # 00:30 UTC). Together they run 00:00 CEST (Sat 22:00 UTC) to 06:00 CET (05:00 UTC): 7 h, not 8.
    split = calendar("Europe/Madrid", ["sun"], [["00:00", "02:30"], ["02:30", "06:00"]])
    assert business_seconds_between(split, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 7 * 3600
    assert add_business_minutes(split, utc(2026, 10, 24, 12), 7 * 60) == utc(2026, 10, 25, 5)


def test_a_start_before_opening_counts_from_the_opening():
    # Mon 2026-11-30 07:00 CET (06:00 UTC): opens 09:00 CET (08:00 UTC) + 30 min.
    assert add_business_minutes(MADRID, utc(2026, 11, 30, 6), 30) == utc(2026, 11, 30, 8, 30)


def test_a_start_after_closing_counts_from_the_next_opening():
    # Mon 2026-11-30 18:00 CET (17:00 UTC), and exactly 17:00 CET: Tue 09:00 CET + 30 min.
    assert add_business_minutes(MADRID, utc(2026, 11, 30, 17), 30) == utc(2026, 12, 1, 8, 30)
    assert add_business_minutes(MADRID, utc(2026, 11, 30, 16), 30) == utc(2026, 12, 1, 8, 30)


def test_several_periods_a_day_skip_the_gap_between_them():
    # New York is EST (UTC-5) after 2026-11-01. Mon 2026-11-30 12:30 EST (17:30 UTC): 30 min to 13:00,
    # lunch, 14:00 EST + 30 min = 14:30 EST (19:30 UTC).
    assert add_business_minutes(NEW_YORK, utc(2026, 11, 30, 17, 30), 60) == utc(2026, 11, 30, 19, 30)
    # Fri 2026-11-27 17:30 EST (22:30 UTC): 30 min to 18:00, then Mon 09:30 EST (14:30 UTC).
    assert add_business_minutes(NEW_YORK, utc(2026, 11, 27, 22, 30), 60) == utc(2026, 11, 30, 14, 30)
    # 08:00-19:00 EST holds both periods: 4 h + 4 h.
    assert business_seconds_between(NEW_YORK, utc(2026, 11, 30, 13), utc(2026, 12, 1, 0)) == 8 * 3600
    assert NEW_YORK.hours["mon"] == ((time(9), time(13)), (time(14), time(18)))


def test_24x7_is_wall_time():
    start = utc(2026, 3, 28, 22, 17, 5, 123456)  # across Europe's spring-forward: UTC has none
    for minutes in (0.05, 1, 59.5, 1440 * 3 + 0.25, 100_000):
        due = add_business_minutes(ALWAYS, start, minutes)
        assert due == start + timedelta(minutes=minutes)
        assert business_seconds_between(ALWAYS, start, due) == minutes * 60
    assert ALWAYS.id == "24x7" and ALWAYS.timezone == "UTC"


@pytest.mark.parametrize("timezone", ["Europe/Madrid", "America/Santiago", "Australia/Lord_Howe"])
def test_open_all_day_every_day_is_wall_time_in_any_zone_across_its_clock_changes(timezone):
    every_day = calendar(timezone, EVERY_DAY, [["00:00", "24:00"]])
    assert every_day.always_open
    start = utc(2026, 1, 1, 0, 0, 0, 250_000)
    for days in (1, 95, 180, 300, 366):  # past the spring and autumn changes (Santiago's at midnight)
        due = add_business_minutes(every_day, start, days * 1440 + 0.5)
        assert due == start + timedelta(days=days, seconds=30)
        assert business_seconds_between(every_day, start, due) == days * 86400 + 30
    # the same hours with the day split in two periods, or a holiday: the walk through the periods
    split = calendar(timezone, EVERY_DAY, [["00:00", "12:00"], ["12:00", "24:00"]])
    holiday = calendar(timezone, EVERY_DAY, [["00:00", "24:00"]], ["2026-06-01"])
    assert not split.always_open and not holiday.always_open
    assert add_business_minutes(split, start, 300 * 1440) == start + timedelta(days=300)
    assert add_business_minutes(holiday, start, 300 * 1440) == start + timedelta(days=301)


def test_fractional_minutes_are_seconds():
    assert add_business_minutes(ALWAYS, utc(2026, 11, 27, 9), 0.05) == utc(2026, 11, 27, 9, 0, 3)
    # Fri 16:59:58 CET: 2 s on Friday, the third second on Monday at 09:00:01 CET (08:00:01 UTC).
    assert add_business_minutes(MADRID, utc(2026, 11, 27, 15, 59, 58), 0.05) == utc(2026, 11, 30, 8, 0, 1)


def test_a_period_ending_at_2400_runs_into_the_next_day():
    night = parse_calendar(
        "night", {"timezone": "UTC", "hours": {"sat": [["20:00", "24:00"]], "sun": [["00:00", "02:00"]]}}
    )
    assert night.hours["sat"] == ((time(20), END_OF_DAY),)
    assert add_business_minutes(night, utc(2026, 11, 28, 23, 30), 60) == utc(2026, 11, 29, 0, 30)
    assert business_seconds_between(night, utc(2026, 11, 28), utc(2026, 11, 30)) == 6 * 3600


def test_is_open_includes_the_opening_and_excludes_the_close():
    assert is_open(MADRID, utc(2026, 11, 27, 8))
    assert is_open(MADRID, utc(2026, 11, 27, 15, 59, 59, 999999))
    assert not is_open(MADRID, utc(2026, 11, 27, 16))
    assert not is_open(MADRID, utc(2026, 11, 28, 12))  # Saturday
    assert not is_open(MADRID, utc(2026, 12, 25, 12))  # holiday
    assert is_open(MADRID, datetime(2026, 11, 27, 10, tzinfo=MADRID_TZ))  # any aware datetime is accepted


def test_elapsed_is_zero_when_b_is_not_after_a():
    assert business_seconds_between(MADRID, utc(2026, 11, 27, 12), utc(2026, 11, 27, 12)) == 0
    assert business_seconds_between(MADRID, utc(2026, 11, 27, 12), utc(2025, 11, 27, 12)) == 0


@pytest.mark.parametrize("minutes", [0, -1, float("nan"), float("inf")])
def test_minutes_must_be_a_finite_number_above_zero(minutes):
    with pytest.raises(ValueError, match="minutes"):
        add_business_minutes(MADRID, utc(2026, 11, 27, 12), minutes)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        add_business_minutes(MADRID, datetime(2026, 11, 27, 12), 10)
    with pytest.raises(ValueError, match="aware"):
        business_seconds_between(MADRID, utc(2026, 11, 27, 12), datetime(2026, 11, 28, 12))


def test_a_calendar_that_never_opens_is_refused_rather_than_searched_forever():
    never = Calendar("never", "UTC", {})
    with pytest.raises(ValueError, match="too far ahead or never"):
        add_business_minutes(never, utc(2026, 1, 1), 1)
    assert business_seconds_between(never, utc(2026, 1, 1), utc(2028, 1, 1)) == 0


def test_a_deadline_beyond_twenty_years_is_refused_quickly_not_searched_for():
    one_minute_a_week = parse_calendar("tiny", {"timezone": "Europe/Madrid", "hours": {"mon": [["09:00", "09:01"]]}})
    with pytest.raises(ValueError, match="too far ahead or never"):
        add_business_minutes(one_minute_a_week, utc(2026, 1, 1), 10 * 366 * 24 * 60)
    assert add_business_minutes(one_minute_a_week, utc(2026, 1, 1), 2) == utc(2026, 1, 12, 8, 1)  # CET: UTC+1
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(70))
    closed = Calendar("closed", "UTC", {"mon": ((time(9), time(17)),)}, mondays)
    with pytest.raises(ValueError, match="closed"):
        add_business_minutes(closed, utc(2026, 1, 1), 1)


# --- parse_calendar -------------------------------------------------------------------------------

VALID = {"timezone": "Europe/Madrid", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["2026-12-25"]}


def errors_of(**changes) -> dict[str, list[str]]:
    raw = {**VALID, **changes}
    with pytest.raises(CalendarError) as caught:
        parse_calendar("bad", {k: v for k, v in raw.items() if v is not None})
    assert isinstance(caught.value, ValueError)
    return caught.value.errors


def test_an_unknown_time_zone_of_10000_characters_is_not_said_back_whole():
    (said,) = errors_of(timezone="y" * 10_000)["timezone"]
    assert said == f"Unknown time zone: {'y' * 60 + '…'!r}."


def test_a_valid_calendar_parses():
    parsed = parse_calendar(
        "madrid", {**VALID, "hours": {"mon": [["09:00", "17:00"]], "tue": [], "sat": [["10:00", "24:00"]]}}
    )
    assert parsed == Calendar(
        "madrid",
        "Europe/Madrid",
        {"mon": ((time(9), time(17)),), "sat": ((time(10), END_OF_DAY),)},
        frozenset({date(2026, 12, 25)}),
    )
    assert parse_calendar("x", {"timezone": "UTC", "hours": {"mon": [["00:00", "24:00"]]}}).holidays == frozenset()
    touching = {"mon": [["09:00", "13:00"], ["13:00", "18:00"]]}
    assert parse_calendar("x", {**VALID, "hours": touching}).hours["mon"][1] == (time(13), time(18))


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"colour": "red"}, "colour"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "Europe"}, "timezone"),  # a directory of the zone database
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 1}, "timezone"),
        ({"timezone": None}, "timezone"),  # missing
        ({"hours": None}, "hours"),  # missing
        ({"hours": [["09:00", "17:00"]]}, "hours"),
        ({"hours": {"funday": [["09:00", "17:00"]]}}, "hours.funday"),
        ({"hours": {"mon": "09:00-17:00"}}, "hours.mon"),
        ({"hours": {"mon": [["09:00"]]}}, "hours.mon"),
        ({"hours": {"mon": [["09:00", "12:00", "17:00"]]}}, "hours.mon"),
        ({"hours": {"mon": [[900, 1700]]}}, "hours.mon"),
        ({"hours": {"mon": [["9:00", "17:00"]]}}, "hours.mon"),
        ({"hours": {"mon": [["09:60", "17:00"]]}}, "hours.mon"),
        ({"hours": {"mon": [["09:00", "24:30"]]}}, "hours.mon"),
        ({"hours": {"mon": [["24:00", "24:00"]]}}, "hours.mon"),  # 24:00 only ends a period
        ({"hours": {"mon": [["17:00", "09:00"]]}}, "hours.mon"),  # inverted
        ({"hours": {"mon": [["09:00", "09:00"]]}}, "hours.mon"),  # empty
        ({"hours": {"mon": [["22:00", "00:00"]]}}, "hours.mon"),  # midnight as an end is 24:00
        ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "hours.mon"),
        ({"hours": {"mon": [["09:00", "18:00"], ["12:00", "13:00"]]}}, "hours.mon"),  # one inside another
        ({"hours": {}}, "hours"),  # no open hours at all
        ({"hours": {"mon": [], "sun": []}}, "hours"),
        ({"holidays": "2026-12-25"}, "holidays"),
        ({"holidays": ["2026-02-30"]}, "holidays.0"),
        ({"holidays": ["2026-12-25", "2026-13-01"]}, "holidays.1"),
        ({"holidays": ["20261225"]}, "holidays.0"),
        ({"holidays": ["2026-W52-5"]}, "holidays.0"),
        ({"holidays": ["25/12/2026"]}, "holidays.0"),
        ({"holidays": [20261225]}, "holidays.0"),
    ],
)
def test_each_invalid_part_is_reported_under_its_path(changes, key):
    assert set(errors_of(**changes)) == {key}


def test_every_problem_is_reported_at_once():
    errors = errors_of(timezone="Nowhere", hours={"mon": [["17:00", "09:00"]], "xyz": []}, holidays=["x"], extra=1)
    assert set(errors) == {"timezone", "hours.mon", "hours.xyz", "holidays.0", "extra"}
    assert "overlap" in errors_of(hours={"mon": [["09:00", "13:00"], ["12:00", "18:00"]]})["hours.mon"][0]


def test_a_calendar_that_is_not_an_object_is_refused():
    with pytest.raises(CalendarError) as caught:
        parse_calendar("x", ["timezone", "UTC"])
    assert set(caught.value.errors) == {"_schema"}


# --- properties -----------------------------------------------------------------------------------

DST_CHANGES = [utc(2025, 3, 30, 1), utc(2025, 10, 26, 1), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)]
DST_CHANGES += [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2027, 3, 14, 7)]  # New York
# Periods with edges inside the changed hours, in zones that change at 02:00/03:00, at midnight (Havana,
# Santiago) and by half an hour (Lord Howe).
ODD_ZONES = ("Europe/Madrid", "America/Havana", "America/Santiago", "Australia/Lord_Howe")
EDGY = [["00:00", "00:20"], ["00:40", "01:10"], ["01:50", "02:10"], ["02:20", "02:40"], ["02:50", "06:00"]]
EDGY_CALENDARS = [calendar(zone, EVERY_DAY, EDGY, id=zone) for zone in ODD_ZONES]
EDGY_CALENDARS += [calendar(zone, ["sat", "sun"], [["23:30", "24:00"]], id=zone + "-late") for zone in ODD_ZONES]


def _changes(zone_name: str) -> list[datetime]:
    """The UTC moments a zone's offset changes in 2025-2027, each found to the minute."""
    zone, found = ZoneInfo(zone_name), []
    moment = utc(2025, 1, 1)
    while moment < utc(2028, 1, 1):
        step = moment + timedelta(days=1)
        if moment.astimezone(zone).utcoffset() != step.astimezone(zone).utcoffset():
            low, high = moment, step
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            found.append(high)
        moment = step
    return found


DST_CHANGES += [change for zone in ODD_ZONES[1:] for change in _changes(zone)]
calendars = st.sampled_from([MADRID, NEW_YORK, ALWAYS, MADRID_NIGHT, MADRID_GAP, *EDGY_CALENDARS])
moments = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda change, offset: change + offset,
        st.sampled_from(DST_CHANGES),
        st.timedeltas(-timedelta(days=3), timedelta(days=3)),
    ),
)
minutes = st.one_of(st.floats(0.001, 20_000), st.integers(1, 5_000), st.sampled_from([0.05, 60, 480]))
spans = st.timedeltas(timedelta(0), timedelta(days=30))
quick = settings(max_examples=200, deadline=None)


@quick
@given(calendars, moments, minutes)
def test_adding_minutes_then_measuring_gives_them_back(calendar, start, n):
    due = add_business_minutes(calendar, start, n)
    assert due > start
    assert business_seconds_between(calendar, start, due) == pytest.approx(n * 60, abs=1e-3)


@quick
@given(calendars, moments, minutes)
def test_a_deadline_is_inside_open_hours_or_at_a_closing(calendar, start, n):
    due = add_business_minutes(calendar, start, n)
    assert is_open(calendar, due) or is_open(calendar, due - timedelta(microseconds=1))


@quick
@given(calendars, moments, spans, spans)
def test_elapsed_never_decreases_adds_up_and_never_exceeds_wall_time(calendar, a, d1, d2):
    b1, b2 = a + d1, a + d1 + d2
    first, second, whole = (business_seconds_between(calendar, x, y) for x, y in ((a, b1), (b1, b2), (a, b2)))
    assert 0 <= first <= whole <= (b2 - a).total_seconds()
    assert first + second == pytest.approx(whole, abs=US)


@quick
@given(calendars, moments, minutes, minutes)
def test_a_later_deadline_for_more_minutes(calendar, start, n1, n2):
    n1, n2 = sorted((n1, n2))
    assert add_business_minutes(calendar, start, n1) <= add_business_minutes(calendar, start, n2)


near_changes = st.builds(
    lambda change, offset: change + offset,
    st.sampled_from(DST_CHANGES),
    st.timedeltas(-timedelta(hours=3), timedelta(hours=3)),
)


@settings(max_examples=600, deadline=None)
@given(calendars, st.one_of(moments, near_changes))
def test_open_exactly_when_the_local_clock_shows_an_open_time(calendar, moment):
    local = moment.astimezone(calendar.zone)
    periods = () if local.date() in calendar.holidays else calendar.hours.get(DAYS[local.weekday()], ())
    shown = local.time().replace(tzinfo=None)
    assert is_open(calendar, moment) == any(a <= shown and (b == END_OF_DAY or shown < b) for a, b in periods)


@quick
@given(calendars, moments)
def test_open_means_business_time_passes(calendar, moment):
    passes = business_seconds_between(calendar, moment, moment + timedelta(microseconds=1)) > 0
    assert is_open(calendar, moment) == passes


def test_time_before_a_change_of_hours_counts_in_the_hours_then_and_after_it_in_the_new():
    """A calendar changed on Wednesday 2026-12-02 at noon UTC (09:00-17:00 UTC, then 09:00-13:00 and last Monday a
    holiday): Monday and Tuesday keep their 8 hours each (the new holiday recounted them away: two reviewers'
    find), Wednesday counts 3 hours before noon and 1 after, Thursday 4."""
    from dataclasses import replace

    before = calendar("UTC", WEEKDAYS, [["09:00", "17:00"]])
    change = utc(2026, 12, 2, 12)
    after = replace(calendar("UTC", WEEKDAYS, [["09:00", "13:00"]], ["2026-11-30"]), earlier=((change, before),))
    monday, friday = utc(2026, 11, 30, 0), utc(2026, 12, 4, 0)

    assert business_seconds_between(after, monday, friday) == (8 + 8 + 3 + 1 + 4) * 3600
    assert business_seconds_between(after, change, friday) == business_seconds_between(
        replace(after, earlier=()), change, friday
    )
    assert add_business_minutes(after, monday, 19 * 60) == utc(2026, 12, 2, 12)  # 16 + 3 hours: at the change
    assert add_business_minutes(after, monday, 20 * 60) == utc(2026, 12, 2, 13)  # then the new hours
    assert add_business_minutes(after, monday, 21 * 60) == utc(2026, 12, 3, 10)
    assert is_open(after, utc(2026, 11, 30, 10)) and not is_open(after, utc(2026, 12, 3, 14))
    assert not after.always_open and replace(ALWAYS, earlier=((change, ALWAYS),)).always_open
