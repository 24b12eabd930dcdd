"""BD-rate / BD-quality against hand-computable cases."""
import math

import numpy as np
import pytest

from benchmarks import bdrate

RATES = [0.1, 0.25, 0.5, 1.0, 2.0]
PSNR = [26.0, 29.0, 32.0, 35.5, 39.0]


@pytest.mark.parametrize("method", bdrate.METHODS)
@pytest.mark.parametrize("factor", [0.9, 1.0, 1.25, 0.5])
def test_scaled_rates_give_exact_percentage(method, factor):
    test_rates = [r * factor for r in RATES]
    v = bdrate.bd_rate(RATES, PSNR, test_rates, PSNR, method=method)
    assert v == pytest.approx((factor - 1) * 100, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_lower_is_better_metric(method):
    lpips = [0.5, 0.35, 0.2, 0.1, 0.05]
    v = bdrate.bd_rate(RATES, lpips, [r * 0.8 for r in RATES], lpips, method=method,
                       higher_is_better=False)
    assert v == pytest.approx(-20.0, abs=1e-9)
    # and the ordering of the arguments matters: anchor vs test
    v2 = bdrate.bd_rate([r * 0.8 for r in RATES], lpips, RATES, lpips, method=method,
                        higher_is_better=False)
    assert v2 == pytest.approx(25.0, abs=1e-9)


def test_hand_computed_partial_overlap():
    # test curve quality shifted up by exactly one "step": log-rate is linear in quality,
    # so on the overlap the log-rate difference is constant = ln(2) per 3 dB shift
    rates = [2.0 ** k for k in range(5)]
    q = [30.0 + 3 * k for k in range(5)]
    q_test = [x + 3 for x in q]  # same rate, 3 dB better = half the rate at equal quality
    v = bdrate.bd_rate(rates, q, rates, q_test, method="pchip")
    assert v == pytest.approx(-50.0, abs=1e-9)


def test_bd_quality_constant_offset():
    v = bdrate.bd_quality(RATES, PSNR, RATES, [p + 1.5 for p in PSNR])
    assert v == pytest.approx(1.5, abs=1e-9)
    v = bdrate.bd_quality(RATES, PSNR, RATES, [p + 1.5 for p in PSNR], method="cubic")
    assert v == pytest.approx(1.5, abs=1e-9)


def test_no_overlap_is_nan():
    assert math.isnan(bdrate.bd_rate(RATES, PSNR, RATES, [p + 50 for p in PSNR]))


def test_too_few_points_for_cubic():
    assert math.isnan(bdrate.bd_rate(RATES[:3], PSNR[:3], RATES[:3], PSNR[:3], method="cubic"))
    assert bdrate.bd_rate(RATES[:2], PSNR[:2], RATES[:2], PSNR[:2]) == pytest.approx(0.0)


def test_non_monotone_points_are_dropped():
    c = bdrate.clean_curve([0.1, 0.2, 0.3, 0.4], [30, 32, 31, 33])
    assert c.dropped == 1
    np.testing.assert_allclose(np.exp(c.log_rate), [0.1, 0.2, 0.4])


def test_unknown_method():
    with pytest.raises(ValueError):
        bdrate.bd_rate(RATES, PSNR, RATES, PSNR, method="linear")


def test_against_published_values_are_sane():
    # a curve 10 % cheaper than the anchor (sampled at other rates, read off the anchor by
    # piecewise-linear interpolation in log-rate) must come out close to -10 %
    a_r = [0.07, 0.16, 0.35, 0.69, 1.2]
    a_q = [26.2, 28.7, 31.6, 34.9, 38.3]
    t_r = [0.07, 0.2, 0.5, 1.0]
    t_q = list(np.interp(np.log([x / 0.9 for x in t_r]), np.log(a_r), a_q))
    for method in ("pchip", "cubic"):
        v = bdrate.bd_rate(a_r, a_q, t_r, t_q, method=method)
        assert -13.0 < v < -7.0, (method, v)  # interpolation differences only


def test_bd_rate_over_a_quality_range_only_sees_that_range():
    # the test codec saves 30 % of the rate below 32 dB and nothing from 32 dB up (pchip: the
    # segments above 35.5 dB depend only on points that the two curves share)
    test_rates = [r * (0.7 if q < 32 else 1.0) for r, q in zip(RATES, PSNR)]
    full = bdrate.bd_rate(RATES, PSNR, test_rates, PSNR)
    assert full < -5
    assert bdrate.bd_rate(RATES, PSNR, test_rates, PSNR, quality_range=(35.5, 99.0)) == pytest.approx(0.0, abs=1e-9)
    # lower-is-better metrics take the range in their own units, either order
    lp = [1.0 - p / 50 for p in PSNR]
    upper = bdrate.bd_rate(RATES, lp, test_rates, lp, higher_is_better=False, quality_range=(1.0 - 35.5 / 50, 0.0))
    assert upper == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(bdrate.bd_rate(RATES, PSNR, test_rates, PSNR, quality_range=(90.0, 99.0)))


def test_training_curve_slope_is_points_per_cpu_hour_since_the_previous_sitting():
    from benchmarks.training_curve import with_slopes

    rows = [{"cpu_hours": 2.0, "bd_rate_vs_bpg_percent": 50.0},
            {"cpu_hours": 2.0, "bd_rate_vs_bpg_percent": 45.0},  # a GPU-only sitting: no CPU time
            {"cpu_hours": 4.0, "bd_rate_vs_bpg_percent": 44.0}]
    slopes = [r.get("bpg_points_per_cpu_hour", "first") for r in with_slopes(rows)]
    assert slopes == ["first", None, -0.5]
    assert "bpg_points_per_cpu_hour" not in rows[2]  # the input rows are left as they were


def test_anchor_quality_at_passes_through_the_anchor_and_is_none_outside():
    at = bdrate.anchor_quality_at(RATES, PSNR, [0.05, 0.25, 0.7, 2.0, 3.0])
    assert at[0] is None and at[4] is None
    assert at[1] == pytest.approx(29.0) and at[3] == pytest.approx(39.0)
    assert 32.0 < at[2] < 35.5  # monotone between its neighbours
    lpips = [0.5, 0.4, 0.3, 0.2, 0.1]
    assert bdrate.anchor_quality_at(RATES, lpips, [0.5], higher_is_better=False) == [pytest.approx(0.3)]
