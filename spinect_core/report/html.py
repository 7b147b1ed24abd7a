"""The one-page HTML plan report, self-contained: its images are embedded as ``data:`` URIs.

:func:`plan_report_html` turns a :class:`~spinect_core.planning.plan.Plan` (through its
``plan.json`` document, so the page shows exactly what the JSON holds) into one HTML page: per side
and window the best and plateau views with C-arm terms a radiographer uses, areas, the inscribed
diameter, the usable area, the triangle area; the needle's length, angles, clearances and whether
it is safe; how sure the level is (a "Level identification" box right under the title, which
names "L5/S1" plainly only when the level is established: see
:mod:`spinect_core.report.level_text`); warnings (first on the page after it: a disagreement of
the network's bone with the CT's own bone must not be missed); the segmentation check per level;
the nerve roots the plan used (one row per side and root: source, confidence, mean radius,
centreline points and length; a root the operator corrected is marked, a root not found says
why) and the labels the operator edited (``segmentation.operator_edits``); the coordinate
system; and the intended-use statement. No patient identifiers are printed (the
plan holds none).

With ``embed_from`` (what :func:`~spinect_core.report.exports.write_plan_outputs` passes) every
figure is read from that folder and embedded as a base64 ``data:image/png`` URI, so the page is
portable alone (mailed, attached to a ticket, opened from a PACS); only the list of the other
output files links to files beside it.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from spinect_core.anatomy.root_tracing import ROOT_NAMES, ROOT_WORDS
from spinect_core.planning.carm import CARM_CONVENTION, carm_text
from spinect_core.report.level_text import LevelStatus, level_status_from_plan
from spinect_core.vocabulary import WINDOW_KINDS

__all__ = ["INTENDED_USE", "ROOT_SOURCES", "RootRow", "carm_instruction", "image_data_uri",
           "label_edit_ml", "plan_report_html", "root_rows"]

#: Intended-use statement printed on every report.
INTENDED_USE = "For research and planning support; not a certified medical device."

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1100px; color: #222; line-height: 1.35; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; margin-top: 1.6em; }
h3 { margin-bottom: 0.3em; }
.notice { background: #fff4d6; border: 1px solid #e0b84c; padding: 0.5em 0.8em; font-weight: 600; }
.warn { background: #fde8e8; border: 1px solid #d66; padding: 0.4em 0.8em; }
.alert { background: #fde8e8; border: 2px solid #b00; padding: 0.5em 0.9em; margin: 0.8em 0; }
.alert h2 { color: #b00; border: none; margin: 0.1em 0 0.3em 0; }
.alert li { font-weight: 600; }
.level { padding: 0.5em 0.9em; margin: 0.6em 0; }
.level h2 { border: none; margin: 0.1em 0 0.3em 0; font-size: 1.15em; }
.level-high { background: #e9f6ec; border: 1px solid #5a9e6b; }
.level-moderate { background: #fff4d6; border: 2px solid #d9a400; }
.level-low { background: #fde8e8; border: 2px solid #b00; }
.level .advice { font-weight: 600; }
.agree-no { color: #b00; font-weight: 600; } .agree-yes { color: #11722b; }
table { border-collapse: collapse; margin: 0.4em 0 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; }
.figs figure { margin: 0; } .figs img { max-width: 520px; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
.small { font-size: 0.85em; color: #555; }
.safe-yes { color: #11722b; font-weight: 600; } .safe-no { color: #b00; font-weight: 600; }
tr.operator td, tr.operator th { background: #fff4d6; } .operator-mark { color: #8a5a00; font-weight: 700; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any, digits: int = 1, unit: str = "") -> str:
    """A number with ``digits`` decimals and its unit; an em dash for missing values."""
    if value is None:
        return "&mdash;"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if not math.isfinite(v):
        return "&mdash;"
    return f"{v:.{digits}f}" + (f"&nbsp;{_e(unit)}" if unit else "")


def _vec(value: Sequence[float] | None, digits: int = 1) -> str:
    if value is None:
        return "&mdash;"
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in value) + ")"


def carm_instruction(carm: Mapping[str, Any] | None) -> str:
    """The C-arm setting in the one C-arm language (HTML-escaped), e.g. "25.0° ipsilateral (left)
    oblique, 12.0° cranial tilt" (:func:`spinect_core.planning.carm.carm_text`; the convention is
    printed once under "Coordinates and angles")."""
    if not carm:
        return "&mdash;"
    return _e(carm_text(carm))


def _view_rows(label: str, view: Mapping[str, Any] | None) -> str:
    if not view:
        return (f"<tr><th>{_e(label)}</th><td colspan='3'>&mdash;</td></tr>")
    return (f"<tr><th>{_e(label)}</th>"
            f"<td>{carm_instruction(view.get('carm'))}</td>"
            f"<td class='num'>{_num(view.get('area_mm2'), 1, 'mm²')}</td>"
            f"<td class='num'>&alpha; {_num(view.get('alpha_deg'))}&deg;, "
            f"&beta; {_num(view.get('beta_deg'))}&deg;</td></tr>")


def _literature_table(w: Mapping[str, Any]) -> str:
    """The window's area at the views the literature uses (endplate squared)."""
    views = w.get("literature_views") or []
    if not views:
        return ""
    rows = "".join(
        f"<tr><th>{_e(v.get('label', ''))}</th>"
        f"<td class='num'>{_num((v.get('carm') or {}).get('tilt_deg'))}&deg;</td>"
        f"<td class='num'>{_num(v.get('area_mm2'), 1, 'mm²')}</td></tr>" for v in views)
    return ("<p class='small'>At the views of the published studies (C-arm tilt chosen to square "
            "the S1 superior endplate), to compare with published areas:</p>"
            "<table><tr><th>view</th><th>C-arm tilt (+ cranial)</th><th>window area</th></tr>"
            f"{rows}</table>")


def _window_table(kind: str, w: Mapping[str, Any]) -> str:
    name = {"kambin": "Kambin triangle", "safe": "Safe (subpedicular) triangle"}.get(kind, kind)
    if not w.get("found"):
        return (f"<h3>{_e(name)}</h3><p class='warn'>Not found: {_e(w.get('reason') or 'no window')}"
                "</p>")
    band = w.get("area_band_mm2") or [None, None]
    rows = [
        "<tr><th>view</th><th>C-arm (patient prone, from straight PA)</th><th>window area</th>"
        "<th>local angles</th></tr>",
        _view_rows("best view", w.get("best_view")),
        _view_rows("plateau view (recommended)", w.get("plateau_view")),
    ]
    numbers = [
        ("largest inscribed circle diameter (cannula size)", _num(w.get("inscribed_diameter_mm"), 2, "mm")),
        ("usable area (needle radius + margin eroded)", _num(w.get("usable_area_mm2"), 1, "mm²")),
        ("area uncertainty band (iso-level 0.35 / 0.65)",
         f"{_num(band[0], 1)} &ndash; {_num(band[1], 1, 'mm²')}"),
        ("fitted triangle area", _num(w.get("triangle_area_mm2"), 1, "mm²")),
    ]
    rows_numbers = "".join(f"<tr><th>{_e(k)}</th><td class='num'>{v}</td></tr>" for k, v in numbers)
    edge = w.get("search_edge_note") or ""
    edge_html = (f"<p class='warn'>{_e(edge[0].upper() + edge[1:])}.</p>" if edge else "")
    return (f"<h3>{_e(name)}</h3><table>{''.join(rows)}</table>{edge_html}"
            f"<p class='small'>Numbers below are measured at the plateau view.</p>"
            f"<table>{rows_numbers}</table>{_literature_table(w)}")


def _trajectory_table(side: Mapping[str, Any]) -> str:
    t = side.get("trajectory")
    if not t:
        return (f"<h3>Needle trajectory</h3><p class='warn'>No trajectory: "
                f"{_e(side.get('trajectory_reason') or 'no window found')}</p>")
    safe = bool(t.get("safe"))
    verdict = ("<span class='safe-yes'>yes</span>" if safe
               else f"<span class='safe-no'>no</span> &mdash; {_e(t.get('reason', ''))}")
    rows = [
        ("through window", _e(t["window"]) if t.get("window") else "&mdash;"),
        ("skin entry (LPS)", _vec(t.get("entry_lps_mm")) + "&nbsp;mm"),
        ("target (LPS)", _vec(t.get("target_lps_mm")) + "&nbsp;mm"),
        ("needle length in the body", _num(t.get("length_mm"), 1, "mm")),
        ("angle to the axial plane", _num(t.get("angle_to_axial_deg"), 1, "°")),
        ("angle to the mid-sagittal plane", _num(t.get("angle_to_sagittal_deg"), 1, "°")),
        ("skin entry from the midline", _num(t.get("skin_entry_from_midline_mm"), 1, "mm")),
        ("minimum clearance to nerve / dura", _num(t.get("min_nerve_clearance_mm"), 1, "mm")),
        ("minimum clearance to bone", _num(t.get("min_bone_clearance_mm"), 1, "mm")),
        ("needle", f"{_e(t.get('needle_gauge', ''))} G, {_num(t.get('needle_diameter_mm'), 2, 'mm')}"),
        ("safe", verdict),
        ("C-arm tunnel view down the needle", carm_instruction(t.get("carm"))),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    warn = "".join(f"<li>{_e(x)}</li>" for x in t.get("warnings") or [])
    return (f"<h3>Needle trajectory</h3><table>{body}</table>"
            + (f"<ul class='warn'>{warn}</ul>" if warn else ""))


_BONE_SOURCES = {"network": "network", "ct": "CT bone model (model-free, from the CT's own "
                 "histogram)", "fused": "fused: CT bone model plus the network's bone within 3 mm"}


def _segmentation_check(check: Mapping[str, Any] | None, bone_source: Any) -> str:
    """The per-level table of the network's bone against the CT bone model (or why there is
    none)."""
    head = "<h2>Segmentation check (network bone against the CT's own bone)</h2>"
    if not check:
        why = ("the labels did not come from the network (a label map was given)"
               if bone_source is None else "not computed")
        return head + f"<p class='small'>No check: {_e(why)}.</p>"
    bounds = check.get("bounds") or {}
    lo, hi = (bounds.get("volume_ratio_range") or [None, None])[:2]
    intro = (f"<p class='small'>Per level, in a slab between the mid-points of neighbouring "
             f"vertebral body centres found in the CT bone model: a level disagrees when its bone "
             f"Dice is below {_num(bounds.get('min_bone_dice'), 2)} or the network's bone volume "
             f"is outside {_num(lo, 2)}&ndash;{_num(hi, 2)} times the CT bone model's.</p>")
    if not check.get("levels_found"):
        return (head + intro + f"<p class='warn'>{_e(check.get('reason') or 'levels not found')}"
                "</p>" + _planned_level(check.get("planned_level")))
    rows = ["<tr><th>level</th><th>bone Dice</th><th>network bone</th><th>CT bone</th>"
            "<th>ratio</th><th>verdict</th></tr>"]
    for lv in check.get("levels") or []:
        agrees = lv.get("agrees")
        if not lv.get("found"):
            verdict = f"not checked: {_e(lv.get('reason', ''))}"
        elif agrees is None:
            verdict = f"not judged: {_e(lv.get('reason', ''))}"
        elif agrees:
            verdict = "<span class='agree-yes'>agrees</span>"
        else:
            verdict = "<span class='agree-no'>DISAGREES: review it</span>"
        rows.append(f"<tr><th>{_e(lv.get('level', ''))}</th>"
                    f"<td class='num'>{_num(lv.get('bone_dice'), 2)}</td>"
                    f"<td class='num'>{_num(lv.get('network_bone_ml'), 1, 'ml')}</td>"
                    f"<td class='num'>{_num(lv.get('ct_bone_ml'), 1, 'ml')}</td>"
                    f"<td class='num'>{_num(lv.get('volume_ratio'), 2)}</td>"
                    f"<td>{verdict}</td></tr>")
    return head + intro + f"<table>{''.join(rows)}</table>" + _planned_level(
        check.get("planned_level"))


def _planned_level(level: Mapping[str, Any] | None) -> str:
    """One line: does the planned L5/S1 disc lie where the CT's own bone counts it?"""
    if not level or not level.get("judged"):
        return ""
    if level.get("offset_mm") is None:          # the CT's count ends above L5: no offset
        why = str(level.get("warning") or "").removeprefix("the level is in doubt: ")
        return f"<p class='warn'>Level in doubt: {_e(why)}</p>"
    offset = float(level.get("offset_mm") or 0.0)
    where = (f"{_num(abs(offset), 0, 'mm')} {'above' if offset < 0 else 'below'} the CT's L5 "
             "body centre "
             f"(the right level lies between 0 and "
             f"{_num(level.get('level_spacing_mm'), 0, 'mm')}, one level spacing)")
    if level.get("agrees"):
        return f"<p class='small'>Level: the planned L5/S1 disc lies {where}: agrees.</p>"
    return (f"<p class='warn'>Level in doubt: the planned L5/S1 disc lies {where}. "
            f"{_e(level.get('warning') or '')}</p>")


#: A root's source (``plan.json``'s ``sides.<side>.roots.<name>.source``) in words.
ROOT_SOURCES = {"network": "network", "ct": "CT (traced)", "fused": "fused (network and CT)",
                "operator": "operator"}


@dataclass(frozen=True, kw_only=True)
class RootRow:
    """One row of the report's "Nerve roots" table (HTML and PDF alike).

    Attributes
    ----------
    side : str
        ``"left"`` / ``"right"``.
    name : str
        ``exiting_l5``, ``exiting_l4`` or ``traversing_s1``.
    words : str
        The root in words ("exiting L5 root").
    found : bool
    source : str or None
        ``network``, ``ct``, ``fused`` or ``operator`` (None when not found).
    confidence : float or None
        0..1.
    mean_radius_mm : float or None
        Mean of the radii along the centreline, mm.
    points : int
        Centreline points.
    length_mm : float or None
        Length of the centreline polyline, mm.
    operator : bool
        Corrected by the operator (source ``operator``).
    note : str
        Not found: why, when the plan's warnings say it; found: the root's notes, joined.
    """

    side: str
    name: str
    words: str
    found: bool
    source: str | None = None
    confidence: float | None = None
    mean_radius_mm: float | None = None
    points: int = 0
    length_mm: float | None = None
    operator: bool = False
    note: str = ""


def _float_or_none(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def root_rows(doc: Mapping[str, Any]) -> list[RootRow]:
    """The rows of the "Nerve roots" table: one per side and root of ``plan.json``'s
    ``sides.<side>.roots`` (sides without roots recorded give none).

    A root that was not found (null) takes its reason from the plan's warning about it
    (``"the exiting L4 root on the left: ..."``), when there is one.

    Parameters
    ----------
    doc : mapping
        The ``plan.json`` document.

    Returns
    -------
    list of RootRow
    """
    warnings = [str(w) for w in doc.get("warnings") or []]
    rows = []
    for side, sp in (doc.get("sides") or {}).items():
        roots = (sp or {}).get("roots")
        if not isinstance(roots, Mapping):
            continue
        names = list(ROOT_NAMES) + [n for n in roots if n not in ROOT_NAMES]
        for name in names:
            if name not in roots:
                continue
            words = ROOT_WORDS.get(name, str(name).replace("_", " "))
            root = roots[name]
            if not root:
                # The roots' warnings name a root as "the <words> on the <side>: <why>".
                head = f"the {words} on the {side}: "
                why = next((w[len(head):] for w in warnings if w.startswith(head)), "")
                rows.append(RootRow(side=str(side), name=str(name), words=words, found=False,
                                    note=why))
                continue
            pts = [[float(v) for v in p] for p in root.get("centreline_lps_mm") or []]
            radii = [r for r in (_float_or_none(v) for v in root.get("radius_mm") or [])
                     if r is not None]
            length = (sum(math.dist(a, b) for a, b in zip(pts[:-1], pts[1:]))
                      if len(pts) >= 2 else None)
            source = root.get("source")
            rows.append(RootRow(
                side=str(side), name=str(name), words=words, found=True,
                source=None if source is None else str(source),
                confidence=_float_or_none(root.get("confidence")),
                mean_radius_mm=sum(radii) / len(radii) if radii else None, points=len(pts),
                length_mm=length, operator=source == "operator",
                note="; ".join(str(n) for n in root.get("notes") or [])))
    return rows


def label_edit_ml(edit: Mapping[str, Any], kind: str) -> float | None:
    """``added_ml`` / ``removed_ml`` (``kind`` ``"added"`` / ``"removed"``) of a label edit
    record; from ``changed_ml`` per changed voxel for a record without them
    (:meth:`~spinect_core.planning.label_edit.ClassEdit.to_dict` alone); None without volumes."""
    if edit.get(f"{kind}_ml") is not None:
        return _float_or_none(edit.get(f"{kind}_ml"))
    changed = _float_or_none(edit.get("changed_voxels"))
    changed_ml = _float_or_none(edit.get("changed_ml"))
    voxels = _float_or_none(edit.get(f"{kind}_voxels"))
    if not changed or changed_ml is None or voxels is None:
        return None
    return voxels * changed_ml / changed


def _roots_section(doc: Mapping[str, Any]) -> str:
    """"Nerve roots" (one row per side and root, the operator's corrections marked) and "Labels
    edited by the operator" (``segmentation.operator_edits``); empty when the plan has
    neither."""
    rows = root_rows(doc)
    edits = list((doc.get("segmentation") or {}).get("operator_edits") or [])
    if not rows and not edits:
        return ""
    out = ["<h2 id='roots'>Nerve roots and the operator's corrections</h2>"]
    if rows:
        n_op = sum(r.operator for r in rows)
        out.append("<h3>Nerve roots</h3><p class='small'>The roots the plan used (mode "
                   f"{_e((doc.get('roots') or {}).get('mode') or 'not recorded')}). "
                   + (f"<span class='operator-mark'>{n_op} corrected by the operator</span>: "
                      "their shape is the operator's, not the software's."
                      if n_op else "None was corrected by the operator.") + "</p>")
        table = ["<table><tr><th>side</th><th>root</th><th>source</th><th>confidence</th>"
                 "<th>mean radius</th><th>centreline points</th><th>length</th>"
                 "<th>notes</th></tr>"]
        for r in rows:
            head = f"<th>{_e(r.side)}</th><th>{_e(r.words)}</th>"
            if not r.found:
                table.append(f"<tr>{head}<td colspan='6' class='agree-no'>not found"
                             + (f": {_e(r.note)}" if r.note else "") + "</td></tr>")
                continue
            source = (_e(ROOT_SOURCES.get(r.source or "", r.source or "unknown")) if not r.operator
                      else "<span class='operator-mark'>corrected by the operator</span>")
            cls = " class='operator'" if r.operator else ""
            table.append(
                f"<tr{cls}>{head}<td>{source}</td>"
                f"<td class='num'>{_num(r.confidence, 2)}</td>"
                f"<td class='num'>{_num(r.mean_radius_mm, 1, 'mm')}</td>"
                f"<td class='num'>{r.points}</td>"
                f"<td class='num'>{_num(r.length_mm, 1, 'mm')}</td>"
                f"<td class='small'>{_e(r.note)}</td></tr>")
        table.append("</table>")
        out += table
    if edits:
        out.append("<h3>Labels edited by the operator</h3><p class='small'>The plan was made "
                   "on the label map as the operator edited it (brush and eraser), counted "
                   "against the segmentation the edits started from.</p>")
        table = ["<table><tr><th>class</th><th>added</th><th>removed</th>"
                 "<th>centre of the changes (LPS)</th></tr>"]
        for e in edits:
            table.append(
                f"<tr class='operator'><th>{_e(e.get('name', ''))}</th>"
                f"<td class='num'>{_e(e.get('added_voxels', 0))} voxels "
                f"({_num(label_edit_ml(e, 'added'), 2, 'ml')})</td>"
                f"<td class='num'>{_e(e.get('removed_voxels', 0))} voxels "
                f"({_num(label_edit_ml(e, 'removed'), 2, 'ml')})</td>"
                f"<td>{_vec(e.get('centroid_lps_mm'))}&nbsp;mm</td></tr>")
        table.append("</table>")
        out += table
    return "".join(out)


def _level_box(status: LevelStatus) -> str:
    """The "Level identification" box: the confidence in words, how the level was counted, what
    to do when it is not established, the reasons and the warnings."""
    # Instance labels name the level (no confidence): shown as established.
    kind = "high" if status.established else (status.confidence or "low")
    out = [f"<div class='level level-{_e(kind)}' id='level'><h2>Level identification</h2>",
           f"<p><b>{_e(status.sentence)}</b> ({_e(status.counted_from)}).</p>"]
    if status.advice:
        out.append(f"<p class='advice'>{_e(status.advice[:1].upper() + status.advice[1:])}.</p>")
    if status.lumbar_count is not None:
        out.append(f"<p>Lumbar vertebrae between T12 and the sacrum: "
                   f"{_e(status.lumbar_count)}.</p>")
    if status.reasons:
        out.append("<p class='small'>Why:</p><ul>"
                   + "".join(f"<li>{_e(r)}</li>" for r in status.reasons) + "</ul>")
    if status.warnings:
        out.append("<p class='small'>Check:</p><ul class='warn'>"
                   + "".join(f"<li>{_e(w)}</li>" for w in status.warnings) + "</ul>")
    out.append("</div>")
    return "".join(out)


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".svg": "image/svg+xml"}


def image_data_uri(path: str | os.PathLike) -> str:
    """``data:<mime>;base64,...`` of an image file (PNG, JPEG, GIF, SVG)."""
    p = Path(path)
    mime = _MIME.get(p.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot embed {p.name}: not a PNG, JPEG, GIF or SVG image")
    return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def _figures(images: Sequence[tuple[str, str]], embed_from: Path | None) -> str:
    if not images:
        return ""
    figs = "".join(
        f"<figure><img src='{_e(src if embed_from is None else image_data_uri(embed_from / src))}'"
        f" alt='{_e(caption)}'><figcaption>{_e(caption)}</figcaption></figure>"
        for src, caption in images)
    return f"<div class='figs'>{figs}</div>"


def plan_report_html(plan_doc: Mapping[str, Any], *,
                     images: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                     files: Sequence[str] = (), title: str | None = None,
                     embed_from: str | os.PathLike | None = None) -> str:
    """The report page.

    Parameters
    ----------
    plan_doc : mapping
        ``Plan.to_dict()`` (the ``plan.json`` document).
    images : mapping, optional
        Side (``"left"`` / ``"right"``) -> list of (relative path, caption) shown in that side's
        section.
    files : sequence of str
        Relative paths of the other outputs, listed at the end.
    title : str, optional
        Default: ``"SPINECT L5/S1 transforaminal plan"`` when the level is established, else
        ``"SPINECT transforaminal plan at the level identified as L5/S1 (moderate
        confidence)"``. Either way the "Level identification" box follows the title at once.
    embed_from : path-like, optional
        The folder the image paths are relative to: each image is read and embedded as a
        ``data:`` URI (the page then needs no file beside it). Without it the images are links.

    Returns
    -------
    str
        A complete HTML5 document (UTF-8).
    """
    images = images or {}
    doc = plan_doc
    level = level_status_from_plan(doc)
    if title is None:
        title = "SPINECT " + level.plan_title("transforaminal plan", capital=False)
    sw = doc.get("software", {})
    ct = doc.get("ct", {})
    anat = doc.get("anatomy", {})
    seg_info = doc.get("segmentation") or {}
    bone_source = seg_info.get("bone_source")
    bone_text = _BONE_SOURCES.get(bone_source, bone_source or "the label map")
    warnings = list(doc.get("warnings") or [])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        # Next to the title: a level that is not established must not read as L5/S1.
        _level_box(level),
        f"<p class='notice'>{_e(INTENDED_USE)} Check every number against the images before use.</p>",
    ]
    if warnings:
        # Right under the title and its level: a plan whose segmentation disagrees with the CT
        # must not be read without them.
        parts.append("<div class='alert' id='warnings'><h2>Warnings</h2><ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    parts += [
        "<table>",
        f"<tr><th>created (UTC)</th><td>{_e(doc.get('created', ''))}</td></tr>",
        f"<tr><th>software</th><td>{_e(sw.get('name', 'spinect'))} {_e(sw.get('version', ''))}, "
        f"plan schema {_e(doc.get('schema_version', ''))}</td></tr>",
        f"<tr><th>segmentation</th><td>{_e(doc.get('segmentation_source') or 'unknown')}</td></tr>",
        f"<tr><th>bone from</th><td>{_e(bone_text)}</td></tr>",
        f"<tr><th>anatomy source</th><td>{_e(anat.get('source', ''))}</td></tr>",
        f"<tr><th>blockers variant</th><td>{_e(doc.get('variant', ''))}</td></tr>",
        f"<tr><th>CT grid</th><td>{_e(' x '.join(str(n) for n in ct.get('size', [])))} voxels, "
        f"spacing {_e(', '.join(f'{float(s):.2f}' for s in ct.get('spacing_mm', [])))} mm</td></tr>",
        "</table>",
        _segmentation_check(doc.get("segmentation_check"), bone_source),
        # The operator's corrections right after the segmentation they change.
        _roots_section(doc),
        "<h2>Coordinates and angles</h2>",
        "<p>All positions are patient <b>LPS</b> millimetres as in DICOM: +x towards the patient's "
        "<b>left</b>, +y <b>posterior</b>, +z <b>superior</b> (3D Slicer shows RAS: negate x and y). "
        "Local view angles: &alpha; = oblique rotation about the cranio-caudal axis (the S1 endplate "
        "normal) from straight posterior towards the operated side; &beta; = cranio-caudal tilt, "
        "positive when the needle points caudally. "
        f"<span id='carm-convention'>{_e(CARM_CONVENTION)}</span> The plateau view is the "
        "centre of the views that show at least 90&nbsp;% of the best area: what a C-arm can hit "
        "reliably. Views are searched in C-arm angles"
        + (" (oblique {}, tilt {} deg)".format(
            *(" to ".join(f"{float(v):g}" for v in (doc.get("view_search") or {}).get(k, []))
              for k in ("oblique_range_deg", "tilt_range_deg")))
           if doc.get("view_search") else "")
        + "; the local angles are given as secondary numbers.</p>",
    ]
    for side, sp in (doc.get("sides") or {}).items():
        parts.append(f"<h2>{_e(side.capitalize())} side ({_e(level.side_label())})</h2>")
        for kind in WINDOW_KINDS:
            if kind in sp:
                parts.append(_window_table(kind, sp[kind]))
        parts.append(_trajectory_table(sp))
        parts.append(_figures(images.get(side, ()),
                              None if embed_from is None else Path(embed_from)))
    if files:
        parts.append("<h2>Files</h2><ul>" + "".join(
            f"<li><a href='{_e(f)}'>{_e(f)}</a></li>" for f in files) + "</ul>")
    parts.append(f"<p class='small'>{_e(INTENDED_USE)} This report holds no patient identifiers.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
