"""The plan report as a PDF (``report.pdf``): the numbers of ``report.html`` and its figures.

Built with matplotlib's PDF backend (no network, no external program): the first page(s) hold
the title, the level identification, the intended-use notice, the warnings, the nerve roots
(one line per side and root, the operator's corrections in bold capitals) and the labels the
operator edited, and per side the
windows (plateau and best views with C-arm terms, areas, inscribed diameter) and the needle
(entry and target in LPS mm, length, angles, clearance, verdict); then one page per figure with
its caption. Like the HTML page it prints no patient identifiers. The same bytes go into the
Encapsulated PDF DICOM object (:func:`spinect_core.io.dicom_derived.encapsulated_pdf_dataset`).
"""

from __future__ import annotations

import html
import io
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

from spinect_core.planning.carm import CARM_CONVENTION
from spinect_core.report.html import (INTENDED_USE, ROOT_SOURCES, carm_instruction,
                                      label_edit_ml, root_rows)
from spinect_core.report.level_text import level_status_from_plan

__all__ = ["plan_report_pdf", "plan_report_lines"]

#: A4 portrait, inches.
PAGE_SIZE = (8.27, 11.69)
_LINES_PER_PAGE = 62
_WRAP = 105


def _plain(text: str) -> str:
    """Text of an HTML fragment (C-arm phrases use entities such as ``&deg;``)."""
    return html.unescape(str(text))


def _num(value: Any, digits: int = 1, unit: str = "") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if v != v or v in (float("inf"), float("-inf")):
        return "-"
    return f"{v:.{digits}f}" + (f" {unit}" if unit else "")


def _vec(value: Sequence[float] | None) -> str:
    return "-" if value is None else "(" + ", ".join(f"{float(v):.1f}" for v in value) + ") mm"


def _roots_lines(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The HTML report's "Nerve roots" and "Labels edited by the operator" as lines (none when
    the plan records neither)."""
    rows = root_rows(doc)
    edits = list((doc.get("segmentation") or {}).get("operator_edits") or [])
    if not rows and not edits:
        return []
    out: list[tuple[str, str]] = [("head", "Nerve roots and the operator's corrections")]
    if rows:
        n_op = sum(r.operator for r in rows)
        out.append(("text", f"The roots the plan used (mode "
                            f"{(doc.get('roots') or {}).get('mode') or 'not recorded'}): "
                            + (f"{n_op} corrected by the operator." if n_op
                               else "none was corrected by the operator.")))
        for r in rows:
            where = f"  {r.side} {r.words}: "
            if not r.found:
                out.append(("bold", where + "not found" + (f" ({r.note})" if r.note else "")))
                continue
            numbers = (f"confidence {_num(r.confidence, 2)}, mean radius "
                       f"{_num(r.mean_radius_mm, 1, 'mm')}, {r.points} centreline points, "
                       f"{_num(r.length_mm, 1, 'mm')} long")
            if r.operator:  # bold and in capitals: the shape is the operator's
                out.append(("bold", where + "CORRECTED BY THE OPERATOR, " + numbers))
            else:
                source = ROOT_SOURCES.get(r.source or "", r.source or "unknown")
                out.append(("text", where + f"{source}, {numbers}"))
    if edits:
        out.append(("bold", "Labels edited by the operator (the plan was made on the edited "
                            "label map):"))
        for e in edits:
            centre = e.get("centroid_lps_mm")
            out.append(("text", f"  {e.get('name', '')}: {e.get('added_voxels', 0)} voxels "
                                f"added ({_num(label_edit_ml(e, 'added'), 2, 'ml')}), "
                                f"{e.get('removed_voxels', 0)} removed "
                                f"({_num(label_edit_ml(e, 'removed'), 2, 'ml')}), around LPS "
                                f"{_vec(centre)}"))
    return out


def plan_report_lines(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The report's text as ``(style, line)`` pairs; style is ``title``, ``head``, ``bold`` or
    ``text``.

    Parameters
    ----------
    doc : mapping
        The ``plan.json`` document.
    """
    level = level_status_from_plan(doc)
    out: list[tuple[str, str]] = [("title", "SPINECT " + level.plan_title("transforaminal plan",
                                                                          capital=False))]
    out += [("head", "Level identification"), ("bold", f"{level.sentence} ({level.counted_from}).")]
    if level.advice:
        out.append(("text", level.advice[:1].upper() + level.advice[1:] + "."))
    out.append(("bold", INTENDED_USE + " Check every number against the images before use."))
    warnings = list(doc.get("warnings") or [])
    if warnings:
        out.append(("head", "Warnings"))
        out += [("bold", f"- {w}") for w in warnings]
    sw = doc.get("software") or {}
    out += [("head", "Plan"),
            ("text", f"created (UTC) {doc.get('created', '')}; {sw.get('name', 'spinect')} "
                     f"{sw.get('version', '')}, plan schema {doc.get('schema_version', '')}"),
            ("text", f"segmentation: {doc.get('segmentation_source') or 'unknown'}"),
            ("text", "Positions are patient LPS millimetres (+x left, +y posterior, +z superior; "
                     "3D Slicer shows RAS: negate x and y)."),
            ("text", CARM_CONVENTION)]
    out += _roots_lines(doc)
    for side, sp in (doc.get("sides") or {}).items():
        out.append(("head", f"{str(side).capitalize()} side ({level.side_label()})"))
        for kind, name in (("kambin", "Kambin triangle"), ("safe", "Safe (subpedicular) triangle")):
            w = sp.get(kind) or {}
            if not w.get("found"):
                out.append(("bold", f"{name}: not found ({w.get('reason') or 'no window'})"))
                continue
            out.append(("bold", name))
            for label, key in (("plateau view (recommended)", "plateau_view"),
                               ("best view", "best_view")):
                v = w.get(key) or {}
                out.append(("text", f"  {label}: alpha {_num(v.get('alpha_deg'))} deg, beta "
                                    f"{_num(v.get('beta_deg'))} deg, area "
                                    f"{_num(v.get('area_mm2'), 1, 'mm^2')}; C-arm: "
                                    f"{_plain(carm_instruction(v.get('carm')))}"))
            out.append(("text", f"  largest inscribed circle {_num(w.get('inscribed_diameter_mm'), 2, 'mm')}, "
                                f"usable area {_num(w.get('usable_area_mm2'), 1, 'mm^2')}, "
                                f"fitted triangle {_num(w.get('triangle_area_mm2'), 1, 'mm^2')}"))
        t = sp.get("trajectory")
        if not t:
            out.append(("bold", f"Needle: none ({sp.get('trajectory_reason') or 'no window found'})"))
            continue
        verdict = "yes" if t.get("safe") else f"NO - {t.get('reason', '')}"
        out += [("bold", f"Needle via the {t.get('window') or '-'} window"),
                ("text", f"  skin entry {_vec(t.get('entry_lps_mm'))}, target "
                         f"{_vec(t.get('target_lps_mm'))}"),
                ("text", f"  length {_num(t.get('length_mm'), 1, 'mm')}, to the axial plane "
                         f"{_num(t.get('angle_to_axial_deg'), 1, 'deg')}, to the mid-sagittal "
                         f"plane {_num(t.get('angle_to_sagittal_deg'), 1, 'deg')}"),
                ("text", f"  minimum clearance to nerve / dura "
                         f"{_num(t.get('min_nerve_clearance_mm'), 1, 'mm')}, to bone "
                         f"{_num(t.get('min_bone_clearance_mm'), 1, 'mm')}; safe: {verdict}"),
                ("text", f"  C-arm tunnel view: {_plain(carm_instruction(t.get('carm')))}")]
    out.append(("text", INTENDED_USE + " This report holds no patient identifiers."))
    return out


def plan_report_pdf(doc: Mapping[str, Any], *,
                    images: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                    image_root: str | os.PathLike | None = None) -> bytes:
    """The report as PDF bytes.

    Parameters
    ----------
    doc : mapping
        The ``plan.json`` document.
    images : mapping, optional
        Side -> list of (path relative to ``image_root``, caption), as for the HTML report.
    image_root : path-like, optional
        Folder of the images (required when ``images`` is given).

    Returns
    -------
    bytes
        A PDF (A4 pages): the text pages, then one page per image with its caption.
    """
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from PIL import Image

    styles = {"title": dict(size=14, weight="bold"), "head": dict(size=11.5, weight="bold"),
              "bold": dict(size=8.5, weight="bold"), "text": dict(size=8.5)}
    lines: list[tuple[str, str]] = []
    for style, text in plan_report_lines(doc):
        width = 80 if style == "title" else _WRAP
        wrapped = textwrap.wrap(text, width=width, subsequent_indent="    ") or [""]
        lines += [(style, w) for w in wrapped]
    buf = io.BytesIO()
    # Fixed metadata: the same plan gives the same file (no creation date).
    with PdfPages(buf, metadata={"Creator": "SPINECT", "Producer": "SPINECT (matplotlib)",
                                 "Title": "SPINECT plan report", "CreationDate": None}) as pdf:
        for start in range(0, len(lines), _LINES_PER_PAGE):
            fig = Figure(figsize=PAGE_SIZE)
            y = 0.96
            for style, text in lines[start:start + _LINES_PER_PAGE]:
                if style == "head":
                    y -= 0.006
                fig.text(0.06, y, text, family="DejaVu Sans", va="top", **styles[style])
                y -= 0.021 if style in ("title", "head") else 0.0145
            pdf.savefig(fig)
        for side, items in (images or {}).items():
            for relative, caption in items:
                if image_root is None:
                    raise ValueError("image_root is needed to put images into the PDF")
                with Image.open(Path(image_root) / relative) as im:
                    picture = im.convert("RGB")
                fig = Figure(figsize=PAGE_SIZE)
                ax = fig.add_axes((0.05, 0.12, 0.9, 0.83))
                # Unsampled: the PDF carries the picture's own pixels and the viewer scales them
                # (a Lanczos resampling to the page's dpi added no detail: the demo's 16-page
                # report took 2.3 s with it, 0.8 s without, and its file was 2.7x as large).
                ax.imshow(picture, interpolation="none")
                ax.set_axis_off()
                fig.text(0.06, 0.1, "\n".join(textwrap.wrap(caption, _WRAP)), va="top", size=9)
                pdf.savefig(fig)
    return buf.getvalue()
