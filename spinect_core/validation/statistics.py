"""The statistics of a validation, as the SPINECT study reports them (scipy.stats).

* :func:`describe`: mean +- SD (sample SD, ddof = 1) and range of a sample, NaNs left out and
  counted.
* :func:`paired_test`: manual against automatic measurements of the same cases (the study's
  Table 4): the differences ``automatic - manual`` are tested for normality with Shapiro-Wilk;
  when normality is not rejected at ``alpha`` the paired t-test (:func:`scipy.stats.ttest_rel`)
  is used, otherwise the Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, scipy's
  defaults: zero differences dropped, exact distribution for small samples without ties). The p
  values are scipy's, unchanged.
* :func:`bland_altman`: bias (mean difference) and 95 % limits of agreement (bias +- 1.96 SD of
  the differences), with the per-case means and differences to plot.
* :func:`angle_between_deg`: the angle between two view directions, degrees.

A pair with a missing value (NaN: a plan failed, a window was not measured) is left out of the
paired statistics and counted in ``n_excluded``. Fewer than 3 pairs (Shapiro-Wilk's minimum) or
differences that are all equal (no spread: neither test is defined) give no test and a ``note``
saying why, never a made-up p value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["Description", "PairedTest", "BlandAltman", "describe", "paired_test",
           "bland_altman", "angle_between_deg", "finite_or_none"]


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, ``None`` when missing or not finite (NaN, inf): JSON has neither."""
    return None if value is None or not math.isfinite(float(value)) else float(value)


@dataclass(frozen=True, kw_only=True)
class Description:
    """Mean +- SD and range of a sample.

    Attributes
    ----------
    n : int
        Finite values used.
    n_missing : int
        NaN / infinite values left out.
    mean, sd, min, max : float or None
        ``sd`` is the sample SD (ddof = 1), ``None`` for fewer than 2 values; all ``None`` for
        an empty sample.
    """

    n: int
    n_missing: int
    mean: float | None
    sd: float | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (finite_or_none(v) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}

    def text(self, digits: int = 3) -> str:
        """``"mean +- SD (min-max)"`` as the study's tables print it; ``"n/a"`` when empty."""
        if self.mean is None:
            return "n/a"
        sd = "n/a" if self.sd is None else f"{self.sd:.{digits}f}"
        return (f"{self.mean:.{digits}f} +- {sd} ({self.min:.{digits}f} to "
                f"{self.max:.{digits}f})")


def describe(values: Sequence[float]) -> Description:
    """:class:`Description` of ``values`` (NaN and inf left out and counted)."""
    arr = np.asarray(list(values), dtype=np.float64).reshape(-1)
    finite = arr[np.isfinite(arr)]
    missing = int(arr.size - finite.size)
    if finite.size == 0:
        return Description(n=0, n_missing=missing, mean=None, sd=None, min=None, max=None)
    return Description(n=int(finite.size), n_missing=missing, mean=float(finite.mean()),
                       sd=float(finite.std(ddof=1)) if finite.size > 1 else None,
                       min=float(finite.min()), max=float(finite.max()))


@dataclass(frozen=True, kw_only=True)
class PairedTest:
    """Manual against automatic measurements of the same cases.

    Attributes
    ----------
    n : int
        Complete pairs used.
    n_excluded : int
        Pairs left out because a value was missing.
    manual, automatic, difference : Description
        ``difference`` is ``automatic - manual``.
    shapiro_w, shapiro_p : float or None
        Shapiro-Wilk on the differences (``None`` when it could not run).
    normal : bool or None
        ``shapiro_p >= alpha`` (``None`` when Shapiro-Wilk could not run).
    test : {"paired t-test", "Wilcoxon signed-rank", "none"}
    statistic, p : float or None
        The chosen test's statistic (t, or Wilcoxon's W) and two-sided p value, as scipy
        returns them.
    alpha : float
    note : str
        Why no test was run, or a remark on the test (empty otherwise).
    """

    n: int
    n_excluded: int
    manual: Description
    automatic: Description
    difference: Description
    shapiro_w: float | None
    shapiro_p: float | None
    normal: bool | None
    test: str
    statistic: float | None
    p: float | None
    alpha: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_excluded": self.n_excluded, "manual": self.manual.to_dict(),
                "automatic": self.automatic.to_dict(), "difference": self.difference.to_dict(),
                "difference_definition": "automatic - manual",
                "shapiro_w": finite_or_none(self.shapiro_w),
                "shapiro_p": finite_or_none(self.shapiro_p),
                "normal": self.normal, "test": self.test,
                "statistic": finite_or_none(self.statistic),
                "p": finite_or_none(self.p), "alpha": self.alpha, "note": self.note}


def _pairs(manual: Sequence[float], automatic: Sequence[float]) -> tuple[np.ndarray, np.ndarray,
                                                                          int]:
    m = np.asarray(list(manual), dtype=np.float64).reshape(-1)
    a = np.asarray(list(automatic), dtype=np.float64).reshape(-1)
    if m.shape != a.shape:
        raise ValueError(f"paired samples differ in length: {m.size} manual, {a.size} automatic")
    keep = np.isfinite(m) & np.isfinite(a)
    return m[keep], a[keep], int(m.size - np.count_nonzero(keep))


def paired_test(manual: Sequence[float], automatic: Sequence[float], *,
                alpha: float = 0.05) -> PairedTest:
    """Shapiro-Wilk on the differences, then the paired t-test or the Wilcoxon signed-rank test.

    Parameters
    ----------
    manual, automatic : sequence of float, same length
        One value per case (e.g. a window's area in mm^2 on the manual and the automatic
        labels); pairs with a NaN are left out.
    alpha : float
        Significance level of the normality test that chooses between the two tests.

    Returns
    -------
    PairedTest
    """
    from scipy import stats

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    m, a, excluded = _pairs(manual, automatic)
    d = a - m
    base = dict(n=int(m.size), n_excluded=excluded, manual=describe(m), automatic=describe(a),
                difference=describe(d), alpha=float(alpha))
    if m.size < 3:
        return PairedTest(**base, shapiro_w=None, shapiro_p=None, normal=None, test="none",
                          statistic=None, p=None,
                          note=f"{m.size} complete pairs: at least 3 are needed for the "
                          "Shapiro-Wilk test")
    if np.ptp(d) == 0.0:
        return PairedTest(**base, shapiro_w=None, shapiro_p=None, normal=None, test="none",
                          statistic=None, p=None,
                          note=f"all {m.size} differences equal {d[0]:g}: no spread, no test "
                          "is defined")
    with warnings.catch_warnings():
        # scipy warns that Shapiro-Wilk's p may be inaccurate above 5000 values; a cohort is
        # far smaller, and the warning would only alarm.
        warnings.simplefilter("ignore", UserWarning)
        w, p_norm = stats.shapiro(d)
    normal = bool(p_norm >= alpha)
    note = ""
    if normal:
        res = stats.ttest_rel(a, m)
        test, statistic, p = "paired t-test", float(res.statistic), float(res.pvalue)
    else:
        test = "Wilcoxon signed-rank"
        # Some difference is non-zero here (the spread check above), so Wilcoxon is defined.
        res = stats.wilcoxon(a, m)
        statistic, p = float(res.statistic), float(res.pvalue)
        nonzero = int(np.count_nonzero(d))
        if nonzero < m.size:
            note = f"{m.size - nonzero} zero differences dropped (scipy's default)"
    return PairedTest(**base, shapiro_w=float(w), shapiro_p=float(p_norm), normal=normal,
                      test=test, statistic=statistic, p=p, note=note)


@dataclass(frozen=True, kw_only=True)
class BlandAltman:
    """Bland-Altman agreement of automatic with manual measurements.

    Attributes
    ----------
    means, differences : np.ndarray, shape (n,)
        Per complete pair ``(manual + automatic) / 2`` and ``automatic - manual``.
    bias : float or None
        Mean difference.
    sd : float or None
        SD of the differences (ddof = 1).
    loa_low, loa_high : float or None
        95 % limits of agreement, ``bias -+ 1.96 sd``.
    """

    means: np.ndarray
    differences: np.ndarray
    bias: float | None
    sd: float | None
    loa_low: float | None
    loa_high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": int(self.means.size), "bias": finite_or_none(self.bias),
                "sd": finite_or_none(self.sd), "loa_low": finite_or_none(self.loa_low),
                "loa_high": finite_or_none(self.loa_high),
                "means": [float(v) for v in self.means],
                "differences": [float(v) for v in self.differences],
                "difference_definition": "automatic - manual",
                "limits_definition": "bias -+ 1.96 SD of the differences"}


def bland_altman(manual: Sequence[float], automatic: Sequence[float]) -> BlandAltman:
    """Bias and 95 % limits of agreement of ``automatic`` against ``manual`` (NaN pairs left
    out)."""
    m, a, _ = _pairs(manual, automatic)
    d = a - m
    means = (a + m) / 2.0
    if d.size == 0:
        return BlandAltman(means=means, differences=d, bias=None, sd=None, loa_low=None,
                           loa_high=None)
    bias = float(d.mean())
    if d.size < 2:
        return BlandAltman(means=means, differences=d, bias=bias, sd=None, loa_low=None,
                           loa_high=None)
    sd = float(d.std(ddof=1))
    return BlandAltman(means=means, differences=d, bias=bias, sd=sd, loa_low=bias - 1.96 * sd,
                       loa_high=bias + 1.96 * sd)


def angle_between_deg(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    """Angle between two directions (LPS vectors of any length), degrees; NaN when one is
    missing or zero."""
    if a is None or b is None:
        return float("nan")
    u, v = np.asarray(a, dtype=np.float64).reshape(3), np.asarray(b, dtype=np.float64).reshape(3)
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0.0 or nv == 0.0 or not (math.isfinite(nu) and math.isfinite(nv)):
        return float("nan")
    # atan2 of |u x v| and u . v: exact near 0 and 180 degrees, where acos loses digits.
    return math.degrees(math.atan2(float(np.linalg.norm(np.cross(u, v))), float(u @ v)))
