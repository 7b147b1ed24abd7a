"""The plan exports' simulated fluoroscopy: drr_<side>_<kind>.png and its LPS geometry sidecar."""

from __future__ import annotations

import json

import numpy as np

from spinect_core.reslice.drr import DetectorGeometry
from spinect_core.report.render import NEEDLE_COLOUR, WINDOW_COLOURS


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _colour_share(rgb: np.ndarray, colour, tol: int = 30) -> float:
    return float(np.mean(np.all(np.abs(rgb.astype(int) - colour) <= tol, axis=-1)))


def test_drrs_are_written_with_outlines_needle_and_geometry(planned, outputs) -> None:
    out, written, _ = outputs
    _, _, plan, _ = planned
    names = {p.name for p in written["drrs"]}
    for side in ("left", "right"):
        for kind in ("kambin", "safe"):
            if not plan.sides[side].window(kind).found:
                continue
            assert {f"drr_{side}_{kind}.png", f"drr_{side}_{kind}.json"} <= names
            rgb = _png(out / f"drr_{side}_{kind}.png")
            meta = json.loads((out / f"drr_{side}_{kind}.json").read_text(encoding="utf-8"))
            assert meta["coordinate_system"] == "LPS"
            g = meta["geometry"]
            assert g["sdd_mm"] == 1000.0 and g["sid_mm"] == 600.0
            best = plan.sides[side].window(kind).best_view
            assert np.allclose(g["view_direction_lps"], best.view_direction_lps, atol=1e-6)
            # The tube is under the table: the X-rays travel against the view (out of the back).
            assert g["tube"] == "below"
            assert np.allclose(g["direction_lps"], -np.asarray(best.view_direction_lps), atol=1e-6)
            assert meta["carm_words"] == best.carm["description"]
            # Grey anatomy with the coloured overlays on it.
            grey = np.all(rgb == rgb[..., :1], axis=-1)
            assert grey.mean() > 0.8 and rgb[grey].std() > 10  # not a blank picture
            assert _colour_share(rgb, WINDOW_COLOURS["kambin"]) > 1e-4
            assert _colour_share(rgb, WINDOW_COLOURS["safe"]) > 1e-4
            assert _colour_share(rgb, NEEDLE_COLOUR) > 1e-4
            # The needle's target, projected with the sidecar's geometry, is on the needle's line.
            geom = DetectorGeometry(
                source_lps_mm=np.array(g["source_lps_mm"]), direction_lps=np.array(g["direction_lps"]),
                isocentre_lps_mm=np.array(g["isocentre_lps_mm"]),
                centre_lps_mm=np.array(g["detector_centre_lps_mm"]),
                row_axis_lps=np.array(g["row_axis_lps"]), col_axis_lps=np.array(g["col_axis_lps"]),
                pixel_mm=tuple(g["pixel_mm"]), shape=tuple(g["shape"]), sdd_mm=g["sdd_mm"],
                sid_mm=g["sid_mm"], view_direction_lps=np.array(g["view_direction_lps"]))
            r, c = geom.project(np.asarray(plan.sides[side].trajectory.target_lps_mm)[None])
            scale = rgb.shape[0] // g["shape"][0]
            y, x = int((r[0] + 0.5) * scale), int((c[0] + 0.5) * scale)
            patch = rgb[max(0, y - 4):y + 5, max(0, x - 4):x + 5]
            assert _colour_share(patch, NEEDLE_COLOUR, tol=10) > 0


def _shoelace(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def test_a_window_outline_projects_with_the_c_arms_magnification(planned) -> None:
    # Issue 17: the window's outline at its best view, projected onto the simulated detector,
    # covers its orthographic area times the magnification squared at its depth (within 3 %).
    from spinect_core.reslice.drr import DRROptions, detector_geometry

    _, _, plan, engine = planned
    checked = 0
    for side in ("left", "right"):
        for kind in ("kambin", "safe"):
            wp = plan.sides[side].window(kind)
            if not wp.found or wp.window is None or not wp.window.polygons_lps:
                continue
            d = np.asarray(wp.best_view.view_direction_lps, float)
            geom = detector_geometry(d, engine.anatomy.sides[side].foramen_centre_lps,
                                     options=DRROptions())
            # Orthographic: the outline in the plane normal to the view.
            e1 = np.cross(d, [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [0.0, 1.0, 0.0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(d, e1)
            ortho = projected = 0.0
            depths = []
            for poly in wp.window.polygons_lps:
                pts = np.asarray(poly, float)
                ortho += _shoelace(np.stack([pts @ e1, pts @ e2], axis=1))
                r, c = geom.project(pts)
                projected += _shoelace(np.stack([c * geom.pixel_mm[1], r * geom.pixel_mm[0]],
                                                axis=1))
                depths.append((pts - geom.source_lps_mm) @ geom.direction_lps)
            magnification = geom.sdd_mm / float(np.mean(np.concatenate(depths)))
            assert 1.3 < magnification < 2.2                 # the foramen near the isocentre
            assert abs(projected / (ortho * magnification ** 2) - 1.0) < 0.03
            checked += 1
    assert checked >= 2
