"""The study's tables from per-case validation records, as JSON-ready dicts and CSV text.

* **Table 2** (segmentation): per class, Dice, IoU and pixel accuracy (TP / true voxels) as
  mean +- SD and range over the cases (HD95 and surface Dice at 1 mm beside them).
* **Table 4** (windows): per side and window (and both sides pooled), the area on the manual and
  on the automatic labels **at the same view** (the manual plan's best view), mean +- SD and
  range, the differences (automatic - manual), Shapiro-Wilk on them and the paired t-test or the
  Wilcoxon signed-rank test with its p (:func:`~spinect_core.validation.statistics.paired_test`).
  A second block compares each plan's own best-view area (what each label map would have
  promised the operator).
* **Bland-Altman** per side and window (same-view areas).
* **Best-view agreement**: the angle between the manual and the automatic plan's best views,
  degrees, per side and window, over the cases where both plans found the window.

"Both sides" pools the left and right windows as separate observations: they are not
independent (two per patient), so read its p value as descriptive.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping, Sequence

from spinect_core.vocabulary import SIDES, WINDOW_KINDS
from spinect_core.validation.statistics import (Description, bland_altman, describe,
                                                paired_test)

__all__ = ["TABLE2_METRICS", "EXTRA_METRICS", "summarise_cohort", "table2_csv", "table4_csv",
           "cases_csv", "best_views_csv"]

#: The study's Table 2 metrics, then the extra ones, in column order.
TABLE2_METRICS = ("dice", "iou", "pixel_accuracy")
EXTRA_METRICS = ("hd95_mm", "surface_dice_1mm")
KINDS = WINDOW_KINDS
#: Row keys of Table 4: each side, then both pooled.
SIDE_ROWS = ("left", "right", "both")


def _done(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("status") == "done"]


def _value(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _pairs(records: Sequence[Mapping[str, Any]], side_row: str, kind: str, *, manual_key: str,
           automatic_key: str) -> tuple[list[str], list[float], list[float]]:
    """(case names, manual values, automatic values) of one Table 4 row; a case without the
    window record gives NaN (excluded and counted by the statistics)."""
    names, m, a = [], [], []
    sides = SIDES if side_row == "both" else (side_row,)
    for r in records:
        windows = r.get("windows")
        if windows is None:
            continue  # planning was off for this run
        for side in sides:
            w = windows.get(side, {}).get(kind)
            names.append(r["case_id"] if side_row != "both" else f"{r['case_id']} {side}")
            if w is None:
                m.append(float("nan"))
                a.append(float("nan"))
                continue
            m.append(_area(w, manual_key))
            a.append(_area(w, automatic_key))
    return names, m, a


def _area(window: Mapping[str, Any], key: str) -> float:
    if key in ("manual_best", "automatic_best"):
        plan = "manual" if key == "manual_best" else "automatic"
        found = window.get(f"{plan}_found")
        if found is None:
            return float("nan")  # that plan failed
        best = window.get(key)
        return 0.0 if best is None else _value(best.get("area_mm2"))
    return _value(window.get(key))


def summarise_cohort(records: Sequence[Mapping[str, Any]], *, alpha: float = 0.05
                     ) -> dict[str, Any]:
    """Tables 2 and 4, Bland-Altman and best-view agreement of the finished cases.

    Parameters
    ----------
    records : sequence of dict
        Per-case records (:func:`spinect_core.validation.cohort.run_case`); failed ones are
        listed, not counted.
    alpha : float
        Level of the normality test choosing the paired test.

    Returns
    -------
    dict
        JSON-ready: ``cases``, ``failed``, ``table2`` (``{class: {metric: Description}}``),
        ``table4`` (``{"same_view" | "own_best": {side: {kind: PairedTest}}}``), ``bland_altman``
        (``{side: {kind: BlandAltman}}``), ``best_views`` (``{side: {kind: Description}}`` of
        angles in degrees) and ``definitions``.
    """
    done = _done(records)
    failed = [{"case_id": r.get("case_id"), "error": r.get("error", "")}
              for r in records if r.get("status") != "done"]
    classes: dict[str, dict[str, list[float]]] = {}
    for r in done:
        for name, m in r.get("metrics", {}).items():
            per = classes.setdefault(name, {k: [] for k in TABLE2_METRICS + EXTRA_METRICS})
            for k in per:
                per[k].append(_value(m.get(k)))
    table2 = {name: {k: describe(v).to_dict() for k, v in per.items()}
              for name, per in classes.items()}
    planned = [r for r in done if r.get("windows") is not None]
    table4: dict[str, Any] = {}
    ba: dict[str, Any] = {}
    best: dict[str, Any] = {}
    if planned:
        for block, keys in (("same_view", ("manual_area_mm2", "automatic_area_mm2")),
                            ("own_best", ("manual_best", "automatic_best"))):
            table4[block] = {}
            for side in SIDE_ROWS:
                table4[block][side] = {}
                for kind in KINDS:
                    names, m, a = _pairs(planned, side, kind, manual_key=keys[0],
                                         automatic_key=keys[1])
                    row = paired_test(m, a, alpha=alpha).to_dict()
                    row["cases"] = names
                    row["manual_values"] = [None if v != v else v for v in m]
                    row["automatic_values"] = [None if v != v else v for v in a]
                    table4[block][side][kind] = row
                    if block == "same_view":
                        ba.setdefault(side, {})[kind] = bland_altman(m, a).to_dict()
        for side in SIDE_ROWS:
            best[side] = {}
            for kind in KINDS:
                angles = []
                for r in planned:
                    for s in (SIDES if side == "both" else (side,)):
                        w = r["windows"].get(s, {}).get(kind)
                        if w is not None and w.get("best_view_angle_deg") is not None:
                            angles.append(float(w["best_view_angle_deg"]))
                best[side][kind] = describe(angles).to_dict()
    return {
        "cases": [r["case_id"] for r in done], "failed": failed,
        "planned_cases": [r["case_id"] for r in planned],
        "table2": table2, "table4": table4, "bland_altman": ba, "best_views": best,
        "definitions": {
            "dice": "2|A&M| / (|A|+|M|), A automatic, M manual voxels of the class",
            "iou": "|A&M| / |A|M||",
            "pixel_accuracy": "|A&M| / |M| (the study's: true-positive voxels / true voxels)",
            "summary": "mean +- SD (sample SD, ddof 1) and range (min to max) over the cases",
            "same_view": "area of the window on the manual and on the automatic labels at the "
                         "same C-arm view: the manual plan's best view (the automatic plan's "
                         "when the manual plan found no such window)",
            "own_best": "each plan's own best-view area (0 when the plan found no window)",
            "difference": "automatic - manual",
            "test": f"Shapiro-Wilk on the differences; paired t-test if p >= {alpha:g}, else "
                    "Wilcoxon signed-rank (scipy.stats, two-sided)",
            "both": "left and right windows pooled as separate observations (two per case, "
                    "not independent)",
            "best_view_angle_deg": "angle between the manual and the automatic plan's best "
                                   "view directions, degrees, where both found the window",
        },
    }


# --- CSV ------------------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}" if v == v and abs(v) != float("inf") else ""
    return str(v)


def _csv(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _desc_cells(d: Mapping[str, Any], digits: int = 4) -> list[str]:
    return [_fmt(d.get(k), digits) for k in ("mean", "sd", "min", "max")] + [str(d.get("n", 0))]


def desc_text(d: Mapping[str, Any], digits: int = 3) -> str:
    """``mean +- SD (min to max)`` of a :class:`Description` dict."""
    return Description(**{k: d.get(k) for k in ("n", "n_missing", "mean", "sd", "min", "max")}
                       ).text(digits)


def table2_csv(summary: Mapping[str, Any]) -> str:
    """Table 2 as CSV: one row per class and metric."""
    rows: list[list[Any]] = [["class", "metric", "mean", "sd", "min", "max", "n", "text"]]
    for name, per in summary["table2"].items():
        for metric in TABLE2_METRICS + EXTRA_METRICS:
            d = per[metric]
            rows.append([name, metric, *_desc_cells(d), desc_text(d)])
    return _csv(rows)


def table4_csv(summary: Mapping[str, Any]) -> str:
    """Table 4 as CSV: one row per block (same view, own best), side and window."""
    rows: list[list[Any]] = [[
        "comparison", "side", "window", "n", "n_excluded", "manual_mean_mm2", "manual_sd_mm2",
        "manual_min_mm2", "manual_max_mm2", "automatic_mean_mm2", "automatic_sd_mm2",
        "automatic_min_mm2", "automatic_max_mm2", "difference_mean_mm2", "difference_sd_mm2",
        "shapiro_w", "shapiro_p", "test", "statistic", "p", "note"]]
    for block, per_side in summary["table4"].items():
        for side, per_kind in per_side.items():
            for kind, t in per_kind.items():
                cells = [block, side, kind, t["n"], t["n_excluded"]]
                for part in ("manual", "automatic"):
                    d = t[part]
                    cells += [_fmt(d.get(k), 2) for k in ("mean", "sd", "min", "max")]
                cells += [_fmt(t["difference"].get("mean"), 2), _fmt(t["difference"].get("sd"), 2),
                          _fmt(t["shapiro_w"]), _fmt(t["shapiro_p"]), t["test"],
                          _fmt(t["statistic"]), _fmt(t["p"]), t["note"]]
                rows.append(cells)
    return _csv(rows)


def best_views_csv(summary: Mapping[str, Any]) -> str:
    """Best-view agreement (degrees) as CSV."""
    rows: list[list[Any]] = [["side", "window", "mean_deg", "sd_deg", "min_deg", "max_deg", "n"]]
    for side, per_kind in summary["best_views"].items():
        for kind, d in per_kind.items():
            rows.append([side, kind, *_desc_cells(d, 2)])
    return _csv(rows)


def cases_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per case, class metric and window: the numbers behind the tables."""
    rows: list[list[Any]] = [["case", "status", "item", "manual", "automatic", "value", "note"]]
    for r in records:
        cid = r.get("case_id")
        if r.get("status") != "done":
            rows.append([cid, r.get("status"), "", "", "", "", r.get("error", "")])
            continue
        for name, m in r.get("metrics", {}).items():
            for k in TABLE2_METRICS + EXTRA_METRICS:
                rows.append([cid, "done", f"{name} {k}", "", "", _fmt(m.get(k)), ""])
        for plan, info in (r.get("plans") or {}).items():
            if not info.get("ok"):
                rows.append([cid, "done", f"plan on the {plan} labels", "", "", "",
                             info.get("error", "")])
        for side, per_kind in (r.get("windows") or {}).items():
            for kind, w in per_kind.items():
                rows.append([cid, "done", f"{side} {kind} area same view (mm^2)",
                             _fmt(w.get("manual_area_mm2"), 2),
                             _fmt(w.get("automatic_area_mm2"), 2), "",
                             w.get("reference_view") or "no window in either plan"])
                rows.append([cid, "done", f"{side} {kind} area own best view (mm^2)",
                             _fmt(_area(w, "manual_best"), 2),
                             _fmt(_area(w, "automatic_best"), 2), "", ""])
                rows.append([cid, "done", f"{side} {kind} best-view angle (deg)", "", "",
                             _fmt(w.get("best_view_angle_deg"), 2), ""])
    return _csv(rows)
