"""The outputs of ``spinect validate``: CSV tables, one JSON document, Bland-Altman plots and one
self-contained HTML page.

Files written into the output folder (all regenerated from the cached per-case records in
``cases/`` at every run, each atomically):

* ``validation.json``: the summary (:func:`~spinect_core.validation.tables.summarise_cohort`),
  the per-case records, the software version, the coordinate system (LPS) and the settings;
* ``table2_segmentation.csv``, ``table4_windows.csv``, ``best_views.csv``, ``cases.csv``;
* ``bland_altman_<side>_<window>.png`` (needs matplotlib, the optional ``train`` extra; without
  it the plots are skipped and the page and JSON say so);
* ``report.html``: the tables and the plots (embedded), the definitions and the failed cases.

No file holds a path, a patient's name or an ID: cases appear under their folder names, which the
user chooses.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from spinect_core import __version__
from spinect_core.validation.tables import (EXTRA_METRICS, KINDS, SIDES, TABLE2_METRICS,
                                            best_views_csv, cases_csv, desc_text, table2_csv,
                                            table4_csv)

__all__ = ["write_validation_outputs", "bland_altman_png", "validation_html", "OUTPUT_FILES"]

log = logging.getLogger(__name__)

#: Fixed output names (the plots add ``bland_altman_<side>_<window>.png``).
OUTPUT_FILES = ("validation.json", "table2_segmentation.csv", "table4_windows.csv",
                "best_views.csv", "cases.csv", "report.html")
METRIC_TITLES = {"dice": "Dice", "iou": "IoU", "pixel_accuracy": "Pixel accuracy",
                 "hd95_mm": "HD95 (mm)", "surface_dice_1mm": "Surface Dice 1 mm"}
MATPLOTLIB_MISSING = ("Bland-Altman plots skipped: matplotlib is not installed (pip install "
                      "'spinect[train]' or matplotlib); the numbers are in the tables and JSON")


def bland_altman_png(ba: Mapping[str, Any], path: str | os.PathLike, *, title: str) -> bool:
    """Draw one Bland-Altman plot (means against differences, bias and 95 % limits) as a PNG.

    Parameters
    ----------
    ba : mapping
        :meth:`~spinect_core.validation.statistics.BlandAltman.to_dict`.
    path : path-like
        Written atomically (an existing file is replaced: the plots are regenerated each run).
    title : str

    Returns
    -------
    bool
        False (nothing written) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)  # headless; never a GUI backend in the core
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from spinect_core.io.atomic import atomic_path

    fig = Figure(figsize=(5.2, 4.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    means, diffs = ba.get("means", []), ba.get("differences", [])
    ax.scatter(means, diffs, s=22, color="#1f5fa8", zorder=3)
    ax.axhline(0.0, color="#999", lw=0.8)
    if ba.get("bias") is not None:
        ax.axhline(ba["bias"], color="#b00", lw=1.2, label=f"bias {ba['bias']:.1f}")
    if ba.get("loa_low") is not None:
        for key in ("loa_low", "loa_high"):
            ax.axhline(ba[key], color="#b00", lw=1.0, ls="--")
        ax.plot([], [], color="#b00", ls="--",
                label=f"95 % limits {ba['loa_low']:.1f} to {ba['loa_high']:.1f}")
    ax.set_xlabel("mean of manual and automatic area (mm$^2$)")
    ax.set_ylabel("automatic - manual (mm$^2$)")
    ax.set_title(f"{title} (n = {len(means)})", fontsize=10)
    if ba.get("bias") is not None:
        ax.legend(fontsize=8, loc="best")
    ax.grid(True, lw=0.3, alpha=0.6)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(str(tmp), format="png")
    return True


# --- HTML -----------------------------------------------------------------------------------------
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1150px; color: #222; line-height: 1.35; }
h2 { border-bottom: 2px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.4em 0 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; } .figs img { max-width: 540px; border: 1px solid #ccc; }
.small { font-size: 0.85em; color: #555; } .warn { background: #fde8e8; border: 1px solid #d66; padding: 0.4em 0.8em; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _p(value: Any) -> str:
    if value is None:
        return "n/a"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"


def _table2_html(summary: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{METRIC_TITLES[m]}</th>" for m in TABLE2_METRICS + EXTRA_METRICS)
    rows = []
    for name, per in summary["table2"].items():
        cells = "".join(f"<td class='num'>{_e(desc_text(per[m], 3))}</td>"
                        for m in TABLE2_METRICS + EXTRA_METRICS)
        n = per[TABLE2_METRICS[0]].get("n", 0)
        rows.append(f"<tr><td>{_e(name)}</td><td class='num'>{n}</td>{cells}</tr>")
    return (f"<table><tr><th>Class</th><th>n</th>{head}</tr>{''.join(rows)}</table>"
            "<p class='small'>mean +- SD (min to max) over the cases; pixel accuracy is the "
            "study's TP / true voxels.</p>")


def _table4_html(block: Mapping[str, Any]) -> str:
    rows = []
    for side, per_kind in block.items():
        for kind, t in per_kind.items():
            rows.append(
                f"<tr><td>{_e(side)}</td><td>{_e(kind)}</td><td class='num'>{t['n']}</td>"
                f"<td class='num'>{_e(desc_text(t['manual'], 1))}</td>"
                f"<td class='num'>{_e(desc_text(t['automatic'], 1))}</td>"
                f"<td class='num'>{_e(desc_text(t['difference'], 1))}</td>"
                f"<td class='num'>{_p(t['shapiro_p'])}</td><td>{_e(t['test'])}</td>"
                f"<td class='num'>{_p(t['p'])}</td><td class='small'>{_e(t['note'])}</td></tr>")
    return ("<table><tr><th>Side</th><th>Window</th><th>n</th><th>Manual (mm<sup>2</sup>)</th>"
            "<th>Automatic (mm<sup>2</sup>)</th><th>Automatic - manual</th>"
            "<th>Shapiro-Wilk p</th><th>Test</th><th>p</th><th>Note</th></tr>"
            f"{''.join(rows)}</table>")


def _ba_row(side: str, kind: str, ba: Mapping[str, Any]) -> str:
    bias = "n/a" if ba["bias"] is None else f"{ba['bias']:.1f}"
    limits = ("n/a" if ba["loa_low"] is None
              else f"{ba['loa_low']:.1f} to {ba['loa_high']:.1f}")
    return (f"<tr><td>{_e(side)}</td><td>{_e(kind)}</td><td class='num'>{ba['n']}</td>"
            f"<td class='num'>{bias}</td><td class='num'>{limits}</td></tr>")


def _best_views_html(summary: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(side)}</td><td>{_e(kind)}</td><td class='num'>{d.get('n', 0)}</td>"
        f"<td class='num'>{_e(desc_text(d, 1))}</td></tr>"
        for side, per_kind in summary["best_views"].items() for kind, d in per_kind.items())
    return ("<table><tr><th>Side</th><th>Window</th><th>n (both found)</th>"
            f"<th>Angle between best views (deg)</th></tr>{rows}</table>")


def validation_html(summary: Mapping[str, Any], *, plots: Sequence[tuple[str, str]] = (),
                    plot_note: str = "", embed_from: str | os.PathLike | None = None,
                    settings: Mapping[str, Any] | None = None) -> str:
    """The validation page (UTF-8 HTML5).

    Parameters
    ----------
    summary : mapping
        :func:`~spinect_core.validation.tables.summarise_cohort`.
    plots : sequence of (relative path, caption)
    plot_note : str
        Shown instead of the plots when they were skipped.
    embed_from : path-like, optional
        Folder of the plots: each is embedded as a ``data:`` URI.
    settings : mapping, optional
        Shown as JSON at the end (weights, bone source, plan options).
    """
    from spinect_core.report.html import INTENDED_USE, image_data_uri

    n, planned = len(summary["cases"]), len(summary.get("planned_cases", []))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>SPINECT validation</title><style>{_STYLE}</style></head><body>",
             "<h1>SPINECT validation: automatic against manual labels</h1>",
             f"<p>{n} cases compared, {planned} planned on both label maps; spinect "
             f"{_e(__version__)}; coordinates LPS millimetres.</p>"]
    if summary["failed"]:
        items = "".join(f"<li>{_e(f['case_id'])}: {_e(f['error'])}</li>"
                        for f in summary["failed"])
        parts.append(f"<div class='warn'><b>Cases that could not be read</b><ul>{items}</ul>"
                     "</div>")
    parts += ["<h2>Table 2: segmentation</h2>", _table2_html(summary)]
    if summary["table4"]:
        defs = summary["definitions"]
        parts += ["<h2>Table 4: window areas at the same view</h2>",
                  f"<p class='small'>{_e(defs['same_view'])}. {_e(defs['test'])}. "
                  f"{_e(defs['both'])}.</p>", _table4_html(summary["table4"]["same_view"]),
                  "<h3>Each plan's own best view</h3>",
                  f"<p class='small'>{_e(defs['own_best'])}.</p>",
                  _table4_html(summary["table4"]["own_best"]),
                  "<h2>Bland-Altman (same-view areas)</h2>"]
        if plots:
            figs = "".join(
                f"<figure><img src='{_e(src if embed_from is None else image_data_uri(Path(embed_from) / src))}'"
                f" alt='{_e(cap)}'><figcaption class='small'>{_e(cap)}</figcaption></figure>"
                for src, cap in plots)
            parts.append(f"<div class='figs'>{figs}</div>")
        if plot_note:
            parts.append(f"<p class='warn'>{_e(plot_note)}</p>")
        rows = "".join(_ba_row(side, kind, ba) for side, per_kind in
                       summary["bland_altman"].items() for kind, ba in per_kind.items())
        parts.append("<table><tr><th>Side</th><th>Window</th><th>n</th>"
                     "<th>Bias (mm<sup>2</sup>)</th><th>95 % limits of agreement</th></tr>"
                     f"{rows}</table>")
        parts += ["<h2>Agreement of the best views</h2>", _best_views_html(summary)]
    else:
        parts.append("<p>Planning was not run: no window comparison.</p>")
    if settings:
        parts.append("<h2>Settings</h2><pre class='small'>"
                     f"{_e(json.dumps(settings, indent=1))}</pre>")
    parts.append(f"<p class='small'>{_e(INTENDED_USE)} Case names are the cohort's folder "
                 "names.</p></body></html>")
    return "\n".join(parts)


def write_validation_outputs(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                             out_dir: str | os.PathLike, *,
                             settings: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the tables, the JSON document, the plots and the page into ``out_dir``.

    These files are derived from the cached per-case records and replaced at each run (the
    records themselves are never replaced without ``force``).

    Returns
    -------
    list of Path
        The files written.
    """
    from spinect_core.io.atomic import write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: list[tuple[str, str]] = []
    plot_note = ""
    if summary.get("bland_altman"):
        for side in SIDES:
            for kind in KINDS:
                ba = summary["bland_altman"].get(side, {}).get(kind)
                if ba is None:
                    continue
                name = f"bland_altman_{side}_{kind}.png"
                title = f"{side} {kind} window, same-view area"
                if not bland_altman_png(ba, out / name, title=title):
                    plot_note = MATPLOTLIB_MISSING
                    log.warning(MATPLOTLIB_MISSING)
                    break
                plots.append((name, title))
                written.append(out / name)
            if plot_note:
                break
    doc = {"format": "spinect-validation", "version": 1,
           "software": {"name": "spinect", "version": __version__},
           "coordinate_system": "LPS", "units": {"area": "mm^2", "angle": "deg", "length": "mm"},
           "settings": dict(settings or {}), "plots": [p for p, _ in plots],
           "plot_note": plot_note, "summary": summary, "cases": list(records)}
    texts = {"validation.json": json.dumps(doc, indent=1, allow_nan=False) + "\n",
             "table2_segmentation.csv": table2_csv(summary),
             "table4_windows.csv": table4_csv(summary) if summary["table4"] else "",
             "best_views.csv": best_views_csv(summary) if summary["best_views"] else "",
             "cases.csv": cases_csv(records),
             "report.html": validation_html(summary, plots=plots, plot_note=plot_note,
                                            embed_from=out, settings=settings)}
    for name, text in texts.items():
        if not text:
            continue
        written.append(write_text_atomic(out / name, text, overwrite=True))
    return written
