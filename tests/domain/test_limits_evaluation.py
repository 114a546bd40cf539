"""Evaluating results and continuous points against the limits in force at their valid time
(``ledger.domain.limits``): the same rule for discrete records, chunks and the report."""

from __future__ import annotations

from ledger.domain.limits import (
    ACTION,
    ALERT,
    WITHIN,
    LimitsVersion,
    in_force_at,
    series_excursions,
    tag_for,
)

T0 = "2024-03-01T08:00:00.000Z"
T1 = "2024-03-02T08:00:00.000Z"
VERSION_1 = LimitsVersion(1, T0, T1, "36.8", "37.2", "36.5", "37.5")
VERSION_2 = LimitsVersion(2, T1, None, "36.8", "37.2", "36.0", "38.5")


def _at(day: int, minute: int) -> str:
    return f"2024-03-0{day}T09:{minute:02d}:00.000Z"


def test_a_value_is_within_alert_or_action_of_the_version_in_force() -> None:
    assert in_force_at([VERSION_1, VERSION_2], _at(1, 0)) is VERSION_1
    assert in_force_at([VERSION_1, VERSION_2], _at(2, 0)) is VERSION_2
    assert in_force_at([VERSION_1, VERSION_2], "2024-02-29T00:00:00.000Z") is None
    assert [VERSION_1.evaluate(v) for v in ("37.0", "37.3", "37.6", "36.4")] == [
        WITHIN,
        ALERT,
        ACTION,
        ACTION,
    ]


def test_a_series_reports_each_run_with_first_last_count_and_worst_value() -> None:
    stamps = [_at(1, m) for m in range(6)] + [_at(2, m) for m in range(3)]
    values = ["37.0", "37.6", "37.9", "37.3", "37.7", "37.0", "37.9", "38.6", "37.0"]
    runs = series_excursions(stamps, values, [VERSION_1, VERSION_2])
    found = [(r.version, r.evaluation, r.first, r.last, r.count, r.worst) for r in runs]
    assert found == [
        (1, ACTION, _at(1, 1), _at(1, 4), 3, "37.9"),
        (1, ALERT, _at(1, 3), _at(1, 3), 1, "37.3"),
        # The same 37.9 is an alert under version 2 (action limit 38.5), 38.6 an action.
        (2, ALERT, _at(2, 0), _at(2, 0), 1, "37.9"),
        (2, ACTION, _at(2, 1), _at(2, 1), 1, "38.6"),
    ]


def test_points_before_any_limits_are_not_evaluated() -> None:
    assert series_excursions(["2024-02-01T00:00:00.000Z"], ["99"], [VERSION_1]) == []


def test_a_tag_measures_the_parameter_its_last_part_names() -> None:
    tags = ["BR1.DO", "BR1.PH", "BR1.TEMP"]
    assert tag_for("culture temperature", tags) == "BR1.TEMP"
    assert tag_for("pH", tags) == "BR1.PH"
    assert tag_for("dissolved oxygen", tags) == "BR1.DO"
    assert tag_for("titer at harvest", tags) is None


def test_a_series_inside_its_band_or_on_its_bounds_has_no_excursion() -> None:
    stamps = [_at(1, m) for m in range(4)]
    assert series_excursions(stamps, ["37.0", "36.9", "37.1", "37.0"], [VERSION_1]) == []
    # On the bounds is within: the exact rule, not the quick one, decides.
    assert series_excursions(stamps, ["36.8", "37.2", "37.0", "37.2"], [VERSION_1]) == []
    [run] = series_excursions(stamps, ["37.0", "37.2", "37.20001", "37.0"], [VERSION_1])
    assert (run.evaluation, run.count, run.worst) == (ALERT, 1, "37.20001")
