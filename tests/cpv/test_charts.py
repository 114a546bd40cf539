"""Control charts: published known answers, baselines and refusals."""

from __future__ import annotations

import math

import pytest

from ledger.cpv import individuals_chart, xbar_r_chart, xbar_s_chart
from ledger.errors import ValidationFailed
from tests.cpv.data import NIST_FLOW_RATE, PISTON_RINGS


def test_nist_individuals_example():
    """NIST/SEMATECH e-Handbook, 6.3.2.2 "Individuals Control Charts" (flow rate, 10 batches).

    Published: x̄ = 50.81, MR̄ = 1.8778, UCL = 50.81 + 3(1.8778/1.128) = 55.8041,
    LCL = 45.8159. The handbook uses 3/d2 with d2 = 1.128, i.e. E2 = 2.6596; the rounded
    E2 = 2.66 would give 55.8049, which does not match the fourth decimal.
    """
    chart = individuals_chart(NIST_FLOW_RATE)
    assert round(chart.centre, 2) == 50.81
    assert round(chart.mr_bar, 4) == 1.8778
    assert round(chart.individuals.upper, 4) == 55.8041
    assert round(chart.individuals.lower, 4) == 45.8159
    # MR chart: UCL = D4(2) * MR-bar = 3.267 * 1.8778.
    assert chart.moving_range.upper == pytest.approx(3.267 * chart.mr_bar)
    assert round(chart.moving_range.upper, 2) == 6.13
    assert chart.moving_range.lower == 0.0
    assert chart.moving_ranges[0] is None
    assert chart.moving_ranges[1] == pytest.approx(2.0)
    assert chart.sigma == pytest.approx(chart.mr_bar / 1.128)
    assert chart.individuals.outside(chart.values) == ()


def test_piston_rings_xbar_r():
    """Montgomery's piston rings (25 samples of 5), qcc vignette "A quick tour of qcc".

    Published (qcc): centre 74.00118, standard deviation R̄/d2 = 0.009785039,
    X̄ limits LCL 73.98805, UCL 74.0143; R chart centre 0.02276, UCL 0.04812533 (qcc's
    D4 = 2.11447 from unrounded d2, d3; the table's D4 = 2.114 agrees to 3 significant figures).
    Montgomery prints the same chart rounded: x̿ = 74.001, R̄ = 0.023, UCL 74.014, LCL 73.988.

    NIST/SEMATECH e-Handbook 6.3.2.1 "Shewhart X-bar and R and S Control Charts" publishes
    the X̄-R limits as x̿ ± A2·R̄ and D3·R̄ .. D4·R̄ with its table of A2, D3, D4 for
    n = 2..10, but no worked data set; so the data are Montgomery's, and the limits are also
    held to the handbook's formula with its printed A2(5) = 0.577, D4(5) = 2.114.
    """
    chart = xbar_r_chart(PISTON_RINGS)
    assert chart.subgroup_size == 5
    assert round(chart.centre, 5) == 74.00118
    assert round(chart.sigma, 9) == 0.009785039
    assert round(chart.location.lower, 5) == 73.98805
    assert round(chart.location.upper, 4) == 74.0143
    assert round(chart.dispersion_bar, 5) == 0.02276
    assert chart.dispersion.upper == pytest.approx(0.04812533, rel=5e-4)
    assert chart.dispersion.lower == 0.0
    assert (round(chart.centre, 3), round(chart.dispersion_bar, 3)) == (74.001, 0.023)
    assert (round(chart.location.upper, 3), round(chart.location.lower, 3)) == (74.014, 73.988)
    assert chart.point_sigma == pytest.approx(chart.sigma / math.sqrt(5))
    nist_half_width = 0.577 * chart.dispersion_bar
    assert chart.location.upper == pytest.approx(chart.centre + nist_half_width, abs=1e-5)
    assert chart.location.lower == pytest.approx(chart.centre - nist_half_width, abs=1e-5)
    assert chart.dispersion.upper == pytest.approx(2.114 * chart.dispersion_bar)


def test_piston_rings_xbar_s():
    """qcc vignette, S chart of the same data: centre S̄ = 0.009240037, S̄/c4 = 0.009829977,
    UCL 0.01930242, LCL 0."""
    chart = xbar_s_chart(PISTON_RINGS)
    assert round(chart.dispersion_bar, 9) == 0.009240037
    assert round(chart.sigma, 9) == 0.009829977
    assert round(chart.dispersion.upper, 7) == 0.0193024
    assert chart.dispersion.lower == 0.0
    assert chart.location.upper == pytest.approx(chart.centre + 1.427 * 0.009240037, abs=1e-5)


def test_limits_come_from_the_baseline_only():
    shifted = [*NIST_FLOW_RATE, 70.0, 71.0, 69.0]
    by_index = individuals_chart(shifted, baseline=range(10))
    reference = individuals_chart(NIST_FLOW_RATE)
    assert by_index.individuals == reference.individuals
    assert by_index.moving_range == reference.moving_range
    assert by_index.individuals.outside(by_index.values) == (10, 11, 12)
    separate = individuals_chart([70.0, 71.0, 69.0], baseline_values=NIST_FLOW_RATE)
    assert separate.individuals == reference.individuals
    assert separate.baseline is None
    assert separate.baseline_size == 10


def test_an_index_baseline_takes_no_moving_range_across_a_gap():
    values = [1.0, 2.0, 100.0, 3.0, 4.0]
    chart = individuals_chart(values, baseline=[0, 1, 3, 4])
    assert chart.mr_bar == pytest.approx(1.0)  # |2-1| and |4-3| only
    assert chart.centre == pytest.approx(2.5)


def test_subgroup_baseline_by_index_and_as_a_separate_list():
    later = [[74.03, 74.04, 74.05, 74.02, 74.03]]
    chart = xbar_r_chart([*PISTON_RINGS, *later], baseline=range(25))
    reference = xbar_r_chart(PISTON_RINGS)
    assert chart.location == reference.location
    assert chart.location.outside(chart.means) == (25,)
    separate = xbar_s_chart(later, baseline_subgroups=PISTON_RINGS)
    assert separate.location == xbar_s_chart(PISTON_RINGS).location


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: individuals_chart([]), "values"),
        (lambda: individuals_chart([1.0, float("nan"), 2.0]), "values[1]"),
        (lambda: individuals_chart([1.0, float("inf"), 2.0]), "values[1]"),
        (lambda: individuals_chart([1.0, "2", 3.0]), "values[1]"),
        (lambda: individuals_chart([1.0]), "baseline"),
        (lambda: individuals_chart([5.0, 5.0, 5.0]), "baseline"),
        (lambda: individuals_chart([1.0, 2.0], baseline=[0, 5]), "baseline[1]"),
        (lambda: individuals_chart([1.0, 2.0, 3.0], baseline=[0, 2]), "baseline"),
        (
            lambda: individuals_chart([1.0, 2.0], baseline=[0, 1], baseline_values=[1, 2]),
            "baseline",
        ),
        (lambda: individuals_chart([1.0, 2.0], baseline_values=[1.0]), "baseline_values"),
        (lambda: xbar_r_chart([]), "subgroups"),
        (lambda: xbar_r_chart([[1.0], [2.0]]), "subgroups[0]"),
        (lambda: xbar_r_chart([[float(i) for i in range(26)]]), "subgroups[0]"),
        (lambda: xbar_s_chart([[1.0, 2.0, 3.0], [1.0, 2.0]]), "subgroups[1]"),
        (lambda: xbar_s_chart([[1.0, 2.0], [1.0, float("nan")]]), "subgroups[1][1]"),
    ],
)
def test_bad_input_is_refused_naming_the_field(call, field):
    with pytest.raises(ValidationFailed) as caught:
        call()
    assert caught.value.field == field


def test_a_ragged_subgroup_is_named():
    with pytest.raises(ValidationFailed, match="subgroup 2 has 4 values but subgroup 0 has 5"):
        xbar_r_chart([*PISTON_RINGS[:2], PISTON_RINGS[2][:4]])
