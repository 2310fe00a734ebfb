"""The reports' SVG charts, tables and periods, and the health page's verdict, without a browser."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from services.portal import charts, figures, period

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def parsed(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(svg: ET.Element) -> list[str]:
    return [node.text for node in svg.iter(f"{SVG}text")]


def test_a_bar_chart_has_a_bar_per_value_each_with_its_label_and_value():
    svg = parsed(charts.bar_chart("Breaches per team", [("network", 4), ("hardware", 2), ("general", 0)]))
    assert svg.get("role") == "img" and svg.get("aria-label") == "Breaches per team"
    assert svg.find(f"{SVG}title").text == "Breaches per team"
    bars = svg.findall(f"{SVG}g")
    assert len(bars) == 3
    assert [texts(bar) for bar in bars] == [["network", "4"], ["hardware", "2"], ["general", "0"]]
    widths = [float(bar.find(f"{SVG}rect").get("width")) for bar in bars]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[2] == 0  # lengths in proportion


def test_no_bars_give_an_empty_state_not_an_error():
    html = str(charts.bar_chart("Breaches per team", [], empty="No breach in this period."))
    assert "<svg" not in html and "No breach in this period." in html


def test_labels_are_escaped_and_no_style_is_used():
    html = str(charts.bar_chart("<b>Teams</b>", [('<script>alert("x")</script>', 1)]))
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html
    line = str(charts.line_chart("Compliance", ["1 Nov", "8 Nov"], {"High": [50.0, 75.0]}))
    for drawn in (html, line):
        assert "style" not in drawn  # the CSP forbids style attributes and elements (style-src 'self')


def test_a_line_chart_has_a_line_and_a_marker_per_figure_and_a_legend_in_words():
    series = {"Emergency": [100.0, 50.0, None, 80.0], "High": [None, None, None, None], "Low": [20.0, 40.0, 60.0, 80.0]}
    svg = parsed(charts.line_chart("Compliance per week", ["1 Nov", "8 Nov", "15 Nov", "22 Nov"], series))
    lines = {g.get("data-series"): g for g in svg.iter(f"{SVG}g") if g.get("data-series")}
    assert set(lines) == set(series)
    emergency = lines["Emergency"]
    assert len(emergency.findall(f"{SVG}polyline")) == 1  # 100, 50, then a gap: the 80 stands alone
    assert len(emergency.findall(f"{SVG}circle")) == 3  # a marker per figure
    assert lines["High"].findall(f"{SVG}polyline") == []
    low = lines["Low"]
    assert low.find(f"{SVG}polyline").get("stroke-dasharray")  # its own dash pattern, not its colour alone
    legend = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "legend")
    assert texts(legend) == ["Emergency", "High", "Low"]
    assert {"0%", "50%", "100%", "1 Nov", "22 Nov"} <= set(texts(svg))


def test_markers_of_one_week_at_the_same_height_stand_side_by_side():
    series = {"Emergency": [100.0, 50.0], "Normal": [100.0, 100.0], "Low": [100.0, 20.0]}
    svg = parsed(charts.line_chart("Compliance per week", ["23 Nov", "30 Nov"], series))
    lines = {g.get("data-series"): g for g in svg.iter(f"{SVG}g") if g.get("data-series")}
    first_week = [float(lines["Emergency"].findall(f"{SVG}circle")[0].get("cx"))]
    first_week += [_marker_x(lines[name], 0) for name in ("Normal", "Low")]
    assert first_week[1] - first_week[0] == pytest.approx(charts.MARKER_GAP)  # all three at 100 %: apart, in order
    assert first_week[2] - first_week[1] == pytest.approx(charts.MARKER_GAP)
    second_week = [float(lines["Emergency"].findall(f"{SVG}circle")[1].get("cx")), _marker_x(lines["Normal"], 1)]
    assert second_week[0] == second_week[1]  # 50 % and 100 %: far apart already, on the week itself
    points = lines["Normal"].find(f"{SVG}polyline").get("points").split()
    assert float(points[0].split(",")[0]) == pytest.approx(sum(first_week) / 3)  # the line still meets the week
    # the first and the last weeks' markers stay within the plot (its grid lines' ends)
    grid = [line for line in svg.iter(f"{SVG}line") if line.get("y1") == line.get("y2")]
    plot = (min(float(line.get("x1")) for line in grid), max(float(line.get("x2")) for line in grid))
    last_week = [float(c.get("cx")) for c in lines["Emergency"].findall(f"{SVG}circle")]
    assert plot[0] <= min(first_week) and max(first_week + last_week) <= plot[1]  # as one alone at a plot's end


def _marker_x(series, index: int) -> float:
    """A square's or diamond's x, from its path's first point (a diamond starts at its tip, a square a corner)."""
    path = series.findall(f"{SVG}path")[index].get("d")
    x = float(re.match(r"M([\d.]+)", path).group(1))
    return x + 4 if series.get("data-series") == "Normal" else x


@pytest.mark.parametrize("weeks", [2, 4, 5, 9, 13, 53])
def test_the_dates_under_a_line_chart_stay_apart_as_a_phone_draws_them(weeks):
    """An admin tester's find: at 390 px, "7 Nov 14 Nov" and "28 Nov 5 Dec" touched (five weeks, every date shown,
    the first and last set against the plot's edges). Each date's width is taken at a phone's font (portal.css)."""
    labels = [(datetime(2026, 11, 7) + timedelta(weeks=n)).strftime("%-d %b") for n in range(weeks)]
    svg = parsed(charts.line_chart("Compliance per week", labels, {"Normal": [50.0] * weeks}))
    dates = [t for t in svg.iter(f"{SVG}text") if t.text in labels]

    spans = [charts._span(float(t.get("x")), t.text, t.get("text-anchor")) for t in dates]
    assert all(left[1] + charts.DATE_GAP <= right[0] for left, right in zip(spans, spans[1:], strict=False))
    assert dates[0].text == labels[0] and len(dates) >= min(weeks, 3)  # the first week named, and others


def test_a_line_chart_without_figures_is_an_empty_state():
    html = str(charts.line_chart("Compliance", ["1 Nov"], {"High": [None]}, empty="No clock was judged."))
    assert "<svg" not in html and "No clock was judged." in html


def stats_row(priority: str, clock: str, met: int, breached: int, counts=()) -> dict:
    bounds = [60, 300, 900, None]
    histogram = [{"up_to_seconds": b, "count": dict(counts).get(b, 0)} for b in bounds]
    return {"priority": priority, "clock": clock, "met": met, "breached": breached, "open": 0, "stopped": 0,
            "compliance_percent": figures.percent(met, breached), "median_seconds": 30.0, "p90_seconds": 60.0,
            "measured": met + breached, "histogram": histogram}  # fmt: skip


def test_weekly_compliance_sums_the_chosen_clocks_per_priority():
    week = [stats_row("high", "first_response", 3, 1), stats_row("high", "resolution", 1, 3),
            stats_row("low", "first_response", 0, 0)]  # fmt: skip
    table = figures.weekly_table([(NOW, week)], "")
    assert table.rows == [["2026-11-29", None, 50.0, None, None]]  # emergency, high, normal, low
    assert figures.weekly_table([(NOW, week)], "first_response").rows[0][2] == 75.0
    assert "<svg" in str(table.chart)


def test_a_histogram_table_keeps_the_buckets_up_to_the_last_filled_and_charts_the_totals():
    stats = [stats_row("high", "first_response", 2, 0, {60: 1, 300: 1}), stats_row("low", "first_response", 1, 0,
             {60: 2}), stats_row("high", "resolution", 0, 0)]  # fmt: skip
    table = figures.histogram_table(stats, "first_response")
    assert table.rows == [["up to 1 min", 0, 1, 0, 2, 3], ["1 min to 5 min", 0, 1, 0, 0, 1]]
    assert texts(parsed(table.chart))[-4:] == ["up to 1 min", "3", "1 min to 5 min", "1"]
    empty = figures.histogram_table(stats, "resolution")
    assert empty.rows == [] and "<svg" not in str(empty.chart)


def test_breaches_per_team_and_the_csv_carries_the_same_figures():
    breaches = [{"ticket_id": "a", "clock": "first_response"}, {"ticket_id": "a", "clock": "resolution"},
                {"ticket_id": "b", "clock": "resolution"}, {"ticket_id": "c", "clock": "first_response"}]  # fmt: skip
    table = figures.breaches_table(breaches, {"a": "network", "b": "=HYPERLINK()"})
    assert table.rows == [["network", 1, 0, 1, 2], ["=HYPERLINK()", 0, 0, 1, 1], ["Not known", 1, 0, 0, 1]]
    rows = list(csv.reader(io.StringIO(figures.csv_text(table))))
    assert rows[0] == ["Team", "First response", "Next response", "Resolution", "All"]
    assert rows[1] == ["network", "1", "0", "1", "2"]
    assert rows[2][0] == "'=HYPERLINK()"  # a spreadsheet does not run it


def test_the_csv_gives_percentages_to_a_tenth_and_other_figures_to_a_thousandth():
    columns = [("Median time", "seconds"), ("Compliance", "percent"), ("Ratio", "ratio"), ("Count", "count")]
    table = figures.Table("t", "T", columns, [[70.30300000000001, 96.3045, 0.7595000000000001, 3]])
    rows = list(csv.reader(io.StringIO(figures.csv_text(table))))
    assert rows[1] == ["70.303", "96.3", "0.76", "3"]


def test_durations_and_buckets_in_words():
    assert [figures.duration_words(s) for s in (2.25, 42, 750, 7500, 3 * 86400 + 4 * 3600)] == [
        "2.2 s", "42 s", "12 min", "2 h 05 min", "3 d 4 h"]  # fmt: skip
    bounds = [60, 3600, 86400, 604800, None]
    assert [figures.bucket_words(bounds, i) for i in range(5)] == [
        "up to 1 min", "1 min to 1 h", "1 h to 1 day", "1 day to 7 days", "over 7 days"]  # fmt: skip


def test_the_last_30_days_start_at_midnight_29_days_ago_and_run_to_now():
    chosen, form, errors = period.parse({}, NOW)
    assert errors == {} and form["period"] == "30" and chosen.until is None
    assert chosen.since == datetime(2026, 10, 31, tzinfo=UTC)
    assert chosen.query() == {"since": "2026-10-31T00:00:00.000Z"}
    weeks = chosen.weeks(NOW)
    assert len(weeks) == 5 and weeks[1] == (chosen.since + timedelta(days=7), chosen.since + timedelta(days=14))
    assert weeks[-1][1] is None


def test_two_days_run_from_the_first_midnight_to_the_one_after_the_last():
    chosen, _, errors = period.parse({"period": "dates", "from": "2026-11-01", "to": "2026-11-14"}, NOW)
    assert errors == {} and chosen.label == "1 Nov 2026 to 14 Nov 2026"
    ancient, _, errors = period.parse({"period": "dates", "from": "0001-01-01", "to": "0001-01-31"}, NOW)
    assert errors == {} and ancient.label == "1 Jan 0001 to 31 Jan 0001"  # not "1 Jan 1": the year as written
    assert chosen.query() == {"since": "2026-11-01T00:00:00.000Z", "until": "2026-11-15T00:00:00.000Z"}
    assert [end for _, end in chosen.weeks(NOW)] == [
        datetime(2026, 11, 8, tzinfo=UTC),
        datetime(2026, 11, 15, tzinfo=UTC),
    ]


def test_a_first_day_in_the_future_is_said_alone():
    _, _, errors = period.parse({"period": "dates", "from": "2026-12-05", "to": ""}, NOW)
    assert errors == {"from": ["The first day cannot be in the future."]}  # not the last day left empty


def test_no_day_at_all_asks_for_the_first_only():
    chosen, _, errors = period.parse({"period": "dates", "from": "", "to": ""}, NOW)
    assert chosen is None and errors == {"from": ["Enter the first day."]}  # an empty last day means today


def test_a_first_day_without_a_last_runs_to_today_and_shows_it():
    chosen, form, errors = period.parse({"period": "dates", "from": "2026-11-20", "to": ""}, NOW)
    today = NOW.date()
    assert errors == {} and form["to"] == today.isoformat()
    assert chosen.query()["until"] == (datetime.combine(today, datetime.min.time(), UTC) + timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )


@pytest.mark.parametrize(
    ("first", "last", "field", "message"),
    [
        ("", "2026-11-02", "from", "Enter the first day"),
        ("2026-11-05", "2026-11-01", "to", "after the first day"),
        ("2026-12-05", "2026-12-06", "from", "future"),
        ("2025-01-01", "2026-11-01", "to", "at most 366"),
        ("2026-11-01", "11/02/2026", "to", "Enter the last day"),
    ],  # fmt: skip
)
def test_dates_that_do_not_work_are_named_with_what_to_do(first, last, field, message):
    chosen, form, errors = period.parse({"period": "dates", "from": first, "to": last}, NOW)
    assert chosen is None and re.search(message, errors[field][0]) and form["to"] == last


def test_health_names_what_needs_a_look_and_a_silent_broker_hides_no_api():
    from services.portal.health import Health, ServiceHealth
    from shared.topology import QueueCounts

    fine, stuck = QueueCounts(0, 1, 0, 0), QueueCounts(4, 0, 2, 3)
    services = [ServiceHealth("intake", "ready", fine), ServiceHealth("sla", "not ready (mongodb)", stuck)]
    health = Health(services, None, {"pending": "0"}, None, NOW)
    assert health.problems == ["the sla API is not ready (mongodb)", "no sla worker consumes its queue",
                               "sla has dead letters"]  # fmt: skip
    assert Health(services[:1], None, None, "notify did not answer", NOW).problems == []
    silent = Health(services, "RabbitMQ does not answer at 127.0.0.1:5672", None, None, NOW)
    assert silent.problems == ["the sla API is not ready (mongodb)", "RabbitMQ does not answer at 127.0.0.1:5672"]


def test_satisfaction_per_team_with_all_teams_and_the_csv_carries_the_same_figures():
    ratings = [{"team": "network", "rating": "good"}] * 3 + [{"team": "network", "rating": "bad"},
               {"team": None, "rating": "bad"}]  # fmt: skip
    table = figures.satisfaction_table(ratings)
    assert table.rows == [["network", 3, 1, 4, 75.0], ["Not known", 0, 1, 1, 0.0], ["All teams", 3, 2, 5, 60.0]]
    assert figures.csv_text(table).splitlines()[0] == "Team,Good,Bad,Rated,Satisfied (%)"
    assert "75%" in str(table.chart)
    bars = re.findall(r'<rect x="0" y="\d+" width="([\d.]+)"', str(table.chart))
    assert float(bars[0]) / float(bars[-1]) == 75 / 60  # to the same scale
    alone_bar = re.findall(
        r'width="([\d.]+)"',
        str(figures.satisfaction_table([{"team": "d", "rating": "good"}, {"team": "d", "rating": "bad"}]).chart),
    )
    assert float(alone_bar[-1]) < float(bars[0])  # 50% is shorter than 75%: bars are of 100%, not of the best team
    alone = figures.satisfaction_table([{"team": "desk", "rating": "good"}])
    assert alone.rows == [["desk", 1, 0, 1, 100.0]]  # one team: no "All teams" row that says it again
    assert "No request was rated" in str(figures.satisfaction_table([]).chart)


def test_the_tables_name_teams_by_their_names_and_by_id_when_a_name_is_not_known():
    names = {"network": "Network & VPN"}
    backlog = figures.backlog_table([{"team": "network", "status": "new"}, {"team": "desk", "status": "new"}], names)
    assert [row[0] for row in backlog.rows] == ["desk", "Network & VPN"]
    quiet = figures.backlog_table([{"team": "network", "status": "new"}], names, teams=["network", "facilities"])
    assert quiet.rows[0] == ["facilities", 0, 0, 0, 0, 0, 0]  # a team with nothing open is there, with noughts
    breaches = figures.breaches_table([{"ticket_id": "a", "clock": "resolution"}], {"a": "network"}, names)
    assert breaches.rows[0][0] == "Network & VPN"
    rated = figures.satisfaction_table([{"team": "network", "rating": "good"}], names)
    assert rated.rows[0][0] == "Network & VPN"
    full = [{"id": "ada", "name": "Ada", "teams": ["network", "desk"], "open_tickets": 3, "capacity": 3}]
    assert figures.capacity_table(full, names).rows[0][2] == "Network & VPN; desk"  # a name may hold a comma
