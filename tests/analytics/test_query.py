"""An analytics query parsed from a request's parameters: the window a user gets, and a
400 naming the parameter for every value that cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluicegate.analytics.dimensions import DIMENSIONS, MetadataDimension, dimension
from sluicegate.analytics.query import AnalyticsQuery, parse_query
from sluicegate.analytics.window import Grain, iso
from sluicegate.errors import InvalidRequest

NOW = datetime(2026, 5, 20, 13, 47, 12, tzinfo=UTC).timestamp()
HOUR, DAY = 3600, 86400


def parse(*params: tuple[str, str], panel: str = "tags") -> AnalyticsQuery:
    return parse_query(
        list(params), panel=panel, default_group_by="project", default_limit=20, now=NOW
    )


def refused(*params: tuple[str, str], panel: str = "tags") -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(*params, panel=panel)
    assert caught.value.status == 400
    return caught.value


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_the_default_window_is_the_last_seven_days_snapped_outward_to_hours() -> None:
    query = parse()
    window = query.window
    assert window.requested_until == NOW and window.requested_since == NOW - 7 * DAY
    assert window.since == ts("2026-05-13T13:00:00") and window.until == ts("2026-05-20T14:00:00")
    assert [d.name for d in query.group_by] == ["project"] and query.limit == 20
    assert query.filters == ()


@pytest.mark.parametrize(
    ("since", "until", "effective"),
    [
        ("2026-05-01T10:17:00Z", "2026-05-03T15:42:09Z", ("2026-05-01T10:00", "2026-05-03T16:00")),
        ("2026-05-01T10:17:00", "2026-05-01T11:00:00", ("2026-05-01T10:00", "2026-05-01T11:00")),
        ("2026-05-01", "2026-05-02", ("2026-05-01T00:00", "2026-05-02T00:00")),
        (
            "2026-05-01T12:30:00+02:00",
            "2026-05-01T13:00:00+02:00",
            ("2026-05-01T10:00", "2026-05-01T11:00"),
        ),
        (
            str(ts("2026-05-01T10:00:00") + 1),
            "1779278400",
            ("2026-05-01T10:00", "2026-05-20T12:00"),
        ),
        ("36h", "90m", ("2026-05-19T01:00", "2026-05-20T13:00")),
    ],
)
def test_times_as_iso_unix_seconds_or_ages_snap_outward(
    since: str, until: str, effective: tuple[str, str]
) -> None:
    window = parse(("since", since), ("until", until)).window
    assert (window.since, window.until) == (ts(effective[0]), ts(effective[1]))


def test_whole_weeks_then_days_are_read_from_their_rows_and_the_ends_from_hour_rows() -> None:
    def spans(since: str, until: str, coarsest: Grain = "week") -> list[tuple[str, str, str]]:
        window = parse(("since", since), ("until", until)).window
        return [(grain, iso(a), iso(b)) for grain, a, b in window.spans(coarsest)]

    # Friday 10:17 to the Wednesday of the third week after: weeks run Monday to Sunday
    assert spans("2026-05-01T10:17:00Z", "2026-05-20T15:42:00Z") == [
        ("hour", "2026-05-01T10:00:00Z", "2026-05-02T00:00:00Z"),
        ("day", "2026-05-02T00:00:00Z", "2026-05-04T00:00:00Z"),
        ("week", "2026-05-04T00:00:00Z", "2026-05-18T00:00:00Z"),
        ("day", "2026-05-18T00:00:00Z", "2026-05-20T00:00:00Z"),
        ("hour", "2026-05-20T00:00:00Z", "2026-05-20T16:00:00Z"),
    ]
    # a daily series never reads week rows, an hourly one hour rows only
    assert [g for g, _, _ in spans("2026-05-01T10:17:00Z", "2026-05-20T15:42:00Z", "day")] == [
        "hour",
        "day",
        "hour",
    ]
    assert spans("2026-05-01", "2026-05-03", "hour") == [
        ("hour", "2026-05-01T00:00:00Z", "2026-05-03T00:00:00Z")
    ]
    # no whole week inside: days and hours; no whole day: hours; aligned: nothing finer
    assert spans("2026-05-01T10:17:00Z", "2026-05-04T15:42:00Z") == [
        ("hour", "2026-05-01T10:00:00Z", "2026-05-02T00:00:00Z"),
        ("day", "2026-05-02T00:00:00Z", "2026-05-04T00:00:00Z"),
        ("hour", "2026-05-04T00:00:00Z", "2026-05-04T16:00:00Z"),
    ]
    assert spans("2026-05-01T10:17:00Z", "2026-05-01T12:00Z") == [
        ("hour", "2026-05-01T10:00:00Z", "2026-05-01T12:00:00Z")
    ]
    assert spans("2026-05-04", "2026-05-18") == [
        ("week", "2026-05-04T00:00:00Z", "2026-05-18T00:00:00Z")
    ]


@pytest.mark.parametrize(
    ("params", "param", "says"),
    [
        ((("since", "yesterday"),), "since", "is not a time"),
        ((("until", "2026-13-01"),), "until", "is not a time"),
        ((("since", "nan"),), "since", "between 1970 and 9999"),
        ((("since", "-5"),), "since", "between 1970 and 9999"),
        ((("until", "1e300"),), "until", "between 1970 and 9999"),
        ((("since", "2026-05-02"), ("until", "2026-05-01")), "since", "must end after it starts"),
        ((("until", "2020-01-01"),), "until", None),  # only until: since is 7 days before it
        ((("since", "2025-01-01"), ("until", "2026-05-01")), "since", "at most 400 days"),
        ((("group_by", "team,,project"),), "group_by", "empty name"),
        ((("group_by", "team,project,model,provider,environment"),), "group_by", "at most 4"),
        ((("group_by", "team,team"),), "group_by", "twice"),
        ((("group_by", "colour"),), "group_by", "unknown dimension 'colour'"),
        ((("group_by", 'metadata.a"b'),), "group_by", "metadata key"),
        ((("group_by", "metadata."),), "group_by", "metadata key"),
        ((("limit", "0"),), "limit", "from 1 to 1000"),
        ((("limit", "1001"),), "limit", "from 1 to 1000"),
        ((("limit", "ten"),), "limit", "from 1 to 1000"),
        ((("limit", "²"),), "limit", "from 1 to 1000"),
        ((("team", "a"), ("team", "b")), "team", "give it once"),
        ((("team", ""),), "team", "1 to 256 characters"),
        ((("project", "x" * 257),), "project", "1 to 256 characters"),
        ((("colour", "red"),), "colour", "unknown parameter"),
        ((("metadata.a b", "x"),), "metadata.a b", "metadata key"),
    ],
)
def test_every_bad_value_is_a_400_naming_its_parameter(
    params: tuple[tuple[str, str], ...], param: str, says: str | None
) -> None:
    if says is None:  # a valid query
        parse(*params)
        return
    error = refused(*params)
    assert error.param == param
    assert says in error.message


def test_filters_and_metadata_dimensions() -> None:
    query = parse(
        ("group_by", "metadata.customer_id, model"),
        ("team", "search"),
        ("metadata.feature", "summarise"),
        ("limit", "5"),
    )
    assert [d.name for d in query.group_by] == ["metadata.customer_id", "model"]
    assert query.group_by[0] == MetadataDimension("customer_id")
    assert (
        query.filter_on("team") == "search" and query.filter_on("metadata.feature") == "summarise"
    )
    assert query.metadata_keys() == {"customer_id", "feature"} and query.limit == 5


def test_a_dimension_about_people_is_opt_in_per_panel() -> None:
    assert dimension("user_id", "group_by", "latency") is DIMENSIONS["user_id"]
    with pytest.raises(InvalidRequest, match="the adoption panel does not use user_id"):
        dimension("user_id", "group_by", "adoption")


def test_too_many_parameters_are_refused() -> None:
    many = [(f"metadata.k{i}", "v") for i in range(30)]
    error = refused(*many)
    assert "at most 16 filters" in error.message
