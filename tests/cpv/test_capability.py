"""Capability and performance indices, their intervals and the normality check."""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from ledger.cpv import (
    anderson_darling,
    capability_individuals,
    capability_subgroups,
    cp_interval,
    cpk_interval,
    individuals_chart,
)
from ledger.cpv.capability import _ad_p_value
from ledger.errors import ValidationFailed
from tests.cpv.data import NIST_FLOW_RATE, PISTON_RINGS


def test_qcc_piston_ring_capability():
    """qcc vignette "A quick tour of qcc", process.capability of the X̄ chart of Montgomery's
    piston rings, spec 73.95..74.05, sigma = R-bar/d2 = 0.009785, n = 125. Published:
    Cp 1.7033 (1.4914, 1.9148), Cp_k 1.6632 (1.4481, 1.8783)."""
    result = capability_subgroups(PISTON_RINGS, lsl=73.95, usl=74.05, within="rbar")
    assert result.n == 125
    assert result.cp is not None
    assert round(result.cp.value, 4) == 1.7033
    assert round(result.cp.interval.lower, 4) == 1.4914
    assert round(result.cp.interval.upper, 4) == 1.9148
    assert round(result.cpk.value, 4) == 1.6632
    assert round(result.cpk.interval.lower, 4) == 1.4481
    assert round(result.cpk.interval.upper, 4) == 1.8783
    assert result.warnings == ()


def test_montgomery_confidence_interval_examples():
    """Montgomery, Introduction to Statistical Quality Control, 6th ed., §8.3.5.

    Cp: USL = 62, LSL = 38, n = 20, s = 1.75 gives Cp = 2.29 and 1.57 <= Cp <= 3.01.
    Cpk (Bissell): n = 20, Cpk = 1.33 gives 0.88 <= Cpk <= 1.78.
    """
    cp = (62 - 38) / (6 * 1.75)
    assert round(cp, 2) == 2.29
    # The book carries the rounded point estimate 2.29 into the interval (from the unrounded
    # 2.2857 the lower limit is 1.5650, which rounds to 1.56).
    interval = cp_interval(2.29, 20)
    assert (round(interval.lower, 2), round(interval.upper, 2)) == (1.57, 3.01)
    interval = cpk_interval(1.33, 20)
    assert (round(interval.lower, 2), round(interval.upper, 2)) == (0.88, 1.78)
    assert interval.confidence == 0.95


def test_within_sigma_is_the_individuals_chart_sigma():
    spec = {"lsl": 40.0, "usl": 60.0}
    result = capability_individuals(NIST_FLOW_RATE, **spec)
    chart = individuals_chart(NIST_FLOW_RATE)
    assert result.sigma_within == pytest.approx(chart.sigma)
    assert result.sigma_overall == pytest.approx(float(np.std(NIST_FLOW_RATE, ddof=1)))
    assert result.cp is not None and result.pp is not None
    assert result.cp.value == pytest.approx(20 / (6 * chart.sigma))
    assert result.cpk.value == pytest.approx((60 - 50.81) / (3 * chart.sigma))
    assert result.ppk.value == pytest.approx((60 - 50.81) / (3 * result.sigma_overall))
    assert result.within_method == "moving_range"
    assert any("fewer than 25" in w for w in result.warnings)


def test_pooled_within_sigma_is_the_default_for_subgroups():
    result = capability_subgroups(PISTON_RINGS, lsl=73.95, usl=74.05)
    variances = [float(np.var(group, ddof=1)) for group in PISTON_RINGS]
    assert result.within_method == "pooled"
    assert result.sigma_within == pytest.approx(math.sqrt(sum(variances) / len(variances)))
    sbar = capability_subgroups(PISTON_RINGS, lsl=73.95, usl=74.05, within="sbar")
    assert sbar.sigma_within == pytest.approx(0.009829977, abs=1e-9)


def test_one_sided_specification():
    upper_only = capability_individuals(NIST_FLOW_RATE, usl=60.0)
    assert upper_only.cp is None and upper_only.pp is None
    assert upper_only.cpk.value == pytest.approx((60 - 50.81) / (3 * upper_only.sigma_within))
    lower_only = capability_individuals(NIST_FLOW_RATE, lsl=45.0)
    assert lower_only.cpk.value == pytest.approx((50.81 - 45) / (3 * lower_only.sigma_within))


def test_everything_is_a_python_float_and_frozen():
    result = capability_individuals(NIST_FLOW_RATE, lsl=40.0, usl=60.0)
    assert result.cp is not None and result.normality is not None
    numbers = [
        result.mean,
        result.sigma_within,
        result.sigma_overall,
        result.cp.value,
        result.cp.interval.lower,
        result.cpk.interval.upper,
        result.normality.statistic,
        result.normality.p_value,
    ]
    assert all(type(x) is float for x in numbers)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.mean = 0.0  # type: ignore[misc]


def _scipy_ad_statistic(values):
    if "method" in inspect.signature(stats.anderson).parameters:
        return float(stats.anderson(values, "norm", method="interpolate").statistic)
    return float(stats.anderson(values, "norm").statistic)  # pragma: no cover - SciPy < 1.17


def test_anderson_darling_statistic_equals_scipy():
    values = np.asarray(PISTON_RINGS).reshape(-1).tolist()
    result = anderson_darling(values)
    assert result.statistic == pytest.approx(_scipy_ad_statistic(values), rel=1e-9)
    assert result.adjusted_statistic == pytest.approx(
        result.statistic * (1 + 0.75 / 125 + 2.25 / 125**2)
    )
    assert 0.05 < result.p_value <= 1


def test_anderson_darling_p_value_formula():
    """D'Agostino & Stephens (1986), table 4.9, evaluated by hand at one point per branch."""
    assert _ad_p_value(1.0) == pytest.approx(math.exp(1.2937 - 5.709 + 0.0186))
    assert _ad_p_value(0.5) == pytest.approx(math.exp(0.9177 - 4.279 * 0.5 - 1.38 * 0.25))
    assert _ad_p_value(0.3) == pytest.approx(1 - math.exp(-8.318 + 42.796 * 0.3 - 59.938 * 0.09))
    assert _ad_p_value(0.1) == pytest.approx(1 - math.exp(-13.436 + 10.114 - 2.2373))
    # The conventional 5 % critical value of A*² is 0.752.
    assert _ad_p_value(0.752) == pytest.approx(0.05, abs=0.002)


def test_clearly_non_normal_data_fail_the_normality_check():
    values = [1.0] * 20 + [2.0, 50.0, 100.0, 400.0, 1000.0]
    result = capability_individuals(values, lsl=0.0, usl=2000.0)
    assert result.normality is not None and result.normality.p_value < 0.001


def test_too_few_points_for_normality():
    result = capability_individuals([1.0, 2.0, 1.5, 1.7], lsl=0.0, usl=3.0)
    assert result.normality is None
    assert len(result.warnings) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"values": [], "lsl": 0.0, "usl": 1.0}, "values"),
        ({"values": [1.0, float("nan"), 2.0], "lsl": 0.0, "usl": 3.0}, "values[1]"),
        ({"values": [1.0, -float("inf")], "lsl": 0.0, "usl": 3.0}, "values[1]"),
        ({"values": [1.0, 2.0, 3.0], "lsl": 2.0, "usl": 2.0}, "lsl"),
        ({"values": [1.0, 2.0, 3.0], "lsl": 3.0, "usl": 2.0}, "lsl"),
        ({"values": [1.0, 2.0, 3.0]}, "lsl"),
        ({"values": [1.0, 2.0, 3.0], "usl": float("nan")}, "usl"),
        ({"values": [1.0, 2.0, 3.0], "usl": 5.0, "confidence": 1.0}, "confidence"),
        ({"values": [2.0, 2.0, 2.0], "usl": 5.0}, "values"),
    ],
)
def test_bad_input_is_refused(kwargs, field):
    values = kwargs.pop("values")
    with pytest.raises(ValidationFailed) as caught:
        capability_individuals(values, **kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("subgroups", "field"),
    [
        ([[1.0], [2.0]], "subgroups[0]"),
        ([[float(i) for i in range(26)]], "subgroups[0]"),
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], "subgroups[1]"),
    ],
)
def test_bad_subgroups_are_refused(subgroups, field):
    with pytest.raises(ValidationFailed) as caught:
        capability_subgroups(subgroups, lsl=0.0, usl=10.0)
    assert caught.value.field == field


# Values on a 0.1 grid keep the arithmetic well conditioned for the invariance checks.
series = st.lists(st.integers(-5_000, 5_000), min_size=10, max_size=60).map(
    lambda xs: [x / 10 for x in xs]
)


def _indices(result):
    assert result.cp is not None and result.pp is not None
    return (result.cp.value, result.cpk.value, result.pp.value, result.ppk.value)


@settings(max_examples=60, deadline=None)
@given(values=series, shift=st.integers(-100_000, 100_000).map(lambda x: x / 10))
def test_shifting_moves_the_centre_and_leaves_the_indices(values, shift):
    assume(len(set(values)) > 2 and np.mean(np.abs(np.diff(values))) > 0)
    lsl, usl = min(values) - 1.0, max(values) + 1.0
    base = capability_individuals(values, lsl=lsl, usl=usl)
    moved = capability_individuals([v + shift for v in values], lsl=lsl + shift, usl=usl + shift)
    assert _indices(moved) == pytest.approx(_indices(base), rel=1e-6)
    chart, moved_chart = individuals_chart(values), individuals_chart([v + shift for v in values])
    assert moved_chart.centre == pytest.approx(chart.centre + shift, abs=1e-6)
    assert moved_chart.individuals.upper == pytest.approx(chart.individuals.upper + shift, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(values=series, scale=st.floats(0.01, 100.0))
def test_scaling_leaves_the_indices(values, scale):
    assume(len(set(values)) > 2 and np.mean(np.abs(np.diff(values))) > 0)
    lsl, usl = min(values) - 1.0, max(values) + 1.0
    base = capability_individuals(values, lsl=lsl, usl=usl)
    scaled = capability_individuals([v * scale for v in values], lsl=lsl * scale, usl=usl * scale)
    assert _indices(scaled) == pytest.approx(_indices(base), rel=1e-6)
    assert individuals_chart([v * scale for v in values]).centre == pytest.approx(
        individuals_chart(values).centre * scale, rel=1e-9, abs=1e-9
    )
