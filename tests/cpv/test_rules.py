"""Nelson rules 1-8 and the Western Electric subset (centre 0, sigma 1 unless stated)."""

from __future__ import annotations

import pytest

from ledger.cpv import (
    NELSON,
    WESTERN_ELECTRIC,
    evaluate_chart,
    individuals_chart,
    nelson,
    western_electric,
)
from ledger.errors import ValidationFailed

WITHIN_15 = [0.2, 0.3, -0.2, -0.3] * 3 + [0.2, 0.3, -0.2]

# rule: (series that triggers exactly that rule, indexes named, series that just does not)
CASES = {
    1: ([0.5, -0.5, 3.5, -0.5, 0.5], (2,), [0.5, -0.5, 3.0, -0.5, 0.5]),
    2: ([0.5] * 9, tuple(range(9)), [0.5] * 8),
    3: ([-0.5, -0.3, -0.1, 0.1, 0.3, 0.5], tuple(range(6)), [-0.5, -0.3, -0.1, 0.1, 0.3, 0.2]),
    4: ([0.5, -0.5] * 7, tuple(range(14)), [0.5, -0.5] * 6 + [0.5]),
    5: ([0.5, 2.5, 0.5, 2.5, 0.5], (1, 3), [2.5, 0.5, 0.5, 2.5]),
    6: ([1.5, 1.5, 0.5, 1.5, 1.5], (0, 1, 3, 4), [1.5, 1.5, 0.5, 0.5, 1.5, 1.5]),
    7: (WITHIN_15, tuple(range(15)), WITHIN_15[:14]),
    8: ([1.5, -1.5] * 4, tuple(range(8)), [1.5, -1.5] * 3 + [1.5, 0.5]),
}


@pytest.mark.parametrize("rule", NELSON)
def test_each_rule_fires_alone_and_names_its_points(rule):
    series, indexes, _ = CASES[rule]
    found = nelson(series, 0.0, 1.0)
    assert [(v.rule, v.indexes) for v in found] == [(rule, indexes)]
    assert found[0].name
    assert found[0].label == f"N{rule}"


@pytest.mark.parametrize("rule", NELSON)
def test_each_rule_just_does_not_fire(rule):
    _, _, series = CASES[rule]
    assert nelson(series, 0.0, 1.0) == ()


def test_negative_side_and_decreasing_variants():
    assert [v.rule for v in nelson([-0.5] * 9, 0.0, 1.0)] == [2]
    assert [v.rule for v in nelson([0.5, 0.3, 0.1, -0.1, -0.3, -0.5], 0.0, 1.0)] == [3]
    assert [v.rule for v in nelson([-3.5], 0.0, 1.0)] == [1]
    assert [v.indexes for v in nelson([-0.5, -2.5, -0.5, -2.5], 0.0, 1.0)] == [(1, 3)]


def test_a_long_run_is_one_violation_naming_every_point():
    found = nelson([0.5] * 12, 0.0, 1.0)
    assert [(v.rule, v.indexes) for v in found] == [(2, tuple(range(12)))]


def test_a_point_on_the_centre_line_breaks_a_run():
    assert nelson([0.5] * 5 + [0.0] + [0.5] * 5, 0.0, 1.0, rules=[2]) == ()


def test_two_beyond_on_opposite_sides_are_not_rule_5():
    assert nelson([2.5, 0.5, -2.5], 0.0, 1.0) == ()


def test_rule_subset_and_order():
    series = [0.5, -0.5, 3.5, -0.5, 0.5]
    assert nelson(series, 0.0, 1.0, rules=[2, 3]) == ()
    assert [v.rule for v in nelson([*([0.5] * 9), 3.5], 0.0, 1.0)] == [2, 1]


def test_centre_and_sigma_scale_the_zones():
    # Rule 5 with centre 10 and sigma 2: beyond 2 sigma means above 14.
    assert [v.rule for v in nelson([11.0, 14.5, 11.0, 14.5], 10.0, 2.0)] == [5]
    assert nelson([11.0, 14.0, 11.0, 14.0], 10.0, 2.0) == ()


def test_western_electric_mapping():
    """WE1 = N1, WE2 = N5, WE3 = N6, WE4 = N2 with a run of eight (Western Electric,
    Statistical Quality Control Handbook, 1956; Nelson, JQT 16(4), 1984)."""
    assert WESTERN_ELECTRIC == (1, 5, 6, 2)
    eight = western_electric([0.5] * 8, 0.0, 1.0)
    assert [(v.rule, v.nelson_rule, v.indexes, v.label) for v in eight] == [
        (4, 2, tuple(range(8)), "WE4")
    ]
    assert nelson([0.5] * 8, 0.0, 1.0) == ()
    assert western_electric([0.5] * 7, 0.0, 1.0) == ()
    for we, nelson_rule in enumerate(WESTERN_ELECTRIC, start=1):
        series, _, _ = CASES[nelson_rule]
        found = [v for v in western_electric(series, 0.0, 1.0) if v.rule == we]
        assert found
        assert found[0].nelson_rule == nelson_rule
    # Rules 3, 4, 7 and 8 are not Western Electric rules.
    for rule in (3, 4, 7, 8):
        assert western_electric(CASES[rule][0], 0.0, 1.0) == ()


def test_evaluate_chart_uses_the_chart_centre_and_point_sigma():
    baseline = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0]
    chart = individuals_chart([*baseline, 20.0], baseline=range(8))
    found = evaluate_chart(chart)
    assert [(v.rule, v.indexes) for v in found] == [(1, (8,))]
    assert chart.individuals.outside(chart.values) == (8,)
    assert evaluate_chart(chart, scheme="western_electric")[0].label == "WE1"


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (([], 0.0, 1.0), {}, "values"),
        (([1.0, float("nan")], 0.0, 1.0), {}, "values[1]"),
        (([1.0], float("inf"), 1.0), {}, "centre"),
        (([1.0], 0.0, 0.0), {}, "sigma"),
        (([1.0], 0.0, -1.0), {}, "sigma"),
        (([1.0], 0.0, 1.0), {"rules": [9]}, "rules[0]"),
    ],
)
def test_bad_input_is_refused(args, kwargs, field):
    with pytest.raises(ValidationFailed) as caught:
        nelson(*args, **kwargs)
    assert caught.value.field == field
