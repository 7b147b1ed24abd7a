"""The validation statistics against scipy.stats on known samples."""

import math

import numpy as np
import pytest
from scipy import stats

from spinect_core.validation.statistics import (angle_between_deg, bland_altman, describe,
                                                paired_test)


def test_describe_known_sample_and_missing_values():
    d = describe([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert (d.n, d.n_missing) == (4, 1)
    assert d.mean == pytest.approx(2.5)
    assert d.sd == pytest.approx(math.sqrt(5.0 / 3.0))  # sample SD, ddof 1
    assert (d.min, d.max) == (1.0, 4.0)
    assert d.text(2) == "2.50 +- 1.29 (1.00 to 4.00)"
    assert describe([]).mean is None and describe([7.0]).sd is None


def _normal_pairs():
    rng = np.random.default_rng(4)
    manual = rng.uniform(10.0, 60.0, 12)
    return manual, manual + rng.normal(1.5, 2.0, 12)


def _skewed_pairs():
    rng = np.random.default_rng(2)
    manual = rng.uniform(10.0, 60.0, 12)
    # Mostly small differences and two large ones: far from normal.
    diffs = np.concatenate([rng.uniform(0.1, 0.6, 10), [25.0, 40.0]])
    return manual, manual + diffs


def test_normal_differences_take_the_paired_t_test():
    m, a = _normal_pairs()
    w, p_norm = stats.shapiro(a - m)
    assert p_norm >= 0.05  # the sample really is normal-looking
    t = paired_test(m, a)
    assert t.test == "paired t-test" and t.normal is True
    assert t.shapiro_w == pytest.approx(w, rel=1e-12) and t.shapiro_p == pytest.approx(p_norm,
                                                                                     rel=1e-12)
    ref = stats.ttest_rel(a, m)
    assert t.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert t.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert t.difference.mean == pytest.approx(float(np.mean(a - m)))
    assert t.to_dict()["difference_definition"] == "automatic - manual"


def test_skewed_differences_take_wilcoxon():
    m, a = _skewed_pairs()
    _, p_norm = stats.shapiro(a - m)
    assert p_norm < 0.05
    t = paired_test(m, a)
    assert t.test == "Wilcoxon signed-rank" and t.normal is False
    ref = stats.wilcoxon(a, m)
    assert t.statistic == pytest.approx(ref.statistic) and t.p == pytest.approx(ref.pvalue,
                                                                               rel=1e-12)
    # the same data forced to the other branch by alpha gives scipy's t-test p instead
    forced = paired_test(m, a, alpha=1e-9)
    assert forced.test == "paired t-test"
    assert forced.p == pytest.approx(stats.ttest_rel(a, m).pvalue, rel=1e-12)


def test_missing_pairs_too_few_and_no_spread():
    m, a = _normal_pairs()
    m2, a2 = m.copy(), a.copy()
    a2[3] = np.nan
    t = paired_test(m2, a2)
    assert (t.n, t.n_excluded) == (11, 1)
    assert t.p == pytest.approx(stats.ttest_rel(np.delete(a, 3), np.delete(m, 3)).pvalue)
    few = paired_test([1.0, 2.0], [1.5, 2.5])
    assert few.test == "none" and few.p is None and "at least 3" in few.note
    flat = paired_test([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert flat.test == "none" and flat.p is None and "no spread" in flat.note
    with pytest.raises(ValueError):
        paired_test([1.0, 2.0], [1.0])


def test_bland_altman_and_angles():
    ba = bland_altman([10.0, 20.0, 30.0, 5.0], [11.0, 22.0, 33.0, float("nan")])
    assert ba.bias == pytest.approx(2.0) and ba.sd == pytest.approx(1.0)
    assert (ba.loa_low, ba.loa_high) == (pytest.approx(0.04), pytest.approx(3.96))
    assert ba.means.tolist() == [10.5, 21.0, 31.5]
    assert angle_between_deg([1, 0, 0], [0, 2, 0]) == pytest.approx(90.0)
    assert angle_between_deg([1, 1, 0], [1, 1, 0]) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(angle_between_deg(None, [1, 0, 0]))
