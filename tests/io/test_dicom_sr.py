"""The plan as a Comprehensive 3D SR: window outlines (never planar on the bone) become SCOORD3D
regions highdicom accepts, and an item that cannot be encoded is left out with a note instead of
failing the SR (the SR is written after all the planning work)."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.io.dicom_derived import dicom_source, write_dataset
from spinect_core.io.dicom_sr import PLANAR_TOLERANCE_MM, plan_sr_dataset
from spinect_core.volume import CTMetadata, Volume
from tests.dciodvfy import dciodvfy_errors

AREA_CODE = "42798000"  # SCT Area


def _source():
    """A generated DICOM context (the CT had no DICOM headers): enough for an SR."""
    arr = np.zeros((10, 12, 14), dtype=np.int16)
    ct = Volume(array=arr, spacing_mm=[1.0, 1.0, 2.0], origin_lps_mm=[-10.0, 5.0, 30.0],
                metadata=CTMetadata(frame_of_reference_uid="1.2.826.0.1.3680043.8.498.55"))
    return dicom_source(ct)


def _curved_outline(n: int = 60) -> np.ndarray:
    """A closed outline around (20, -40, 110) mm that bends 3 mm out of any plane (a saddle), as
    a window's outline does on the bone surfaces around it."""
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    u, v = 6.0 * np.cos(t), 4.0 * np.sin(t)
    local = np.stack([u, v, 3.0 * np.cos(2 * t)], axis=1)  # saddle: +-3 mm off the u-v plane
    rot = np.array([[0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [-0.6, 0.0, 0.8]])  # tilted in LPS
    return local @ rot.T + np.array([20.0, -40.0, 110.0])


def _doc(outline, view_direction=None, trajectory=None) -> dict:
    view = {"alpha_deg": 40.0, "beta_deg": 10.0, "area_mm2": 70.5}
    if view_direction is not None:
        view["view_direction_lps"] = list(view_direction)
    side = {"kambin": {"found": True, "plateau_view": view, "inscribed_diameter_mm": 5.5,
                       "outline_lps_mm": outline},
            "safe": {"found": False}, "trajectory": trajectory}
    return {"sides": {"left": side}}


def _scoords(ds) -> list[tuple[str, np.ndarray]]:
    """(GraphicType, points (N, 3)) of every SCOORD3D item of the SR."""
    found = []

    def walk(items):
        for item in items:
            if item.ValueType == "SCOORD3D":
                found.append((str(item.GraphicType),
                              np.array(item.GraphicData, dtype=float).reshape(-1, 3)))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def _areas(ds) -> list[float]:
    out = []

    def walk(items):
        for item in items:
            if item.ValueType == "NUM" and item.ConceptNameCodeSequence[0].CodeValue == AREA_CODE:
                out.append(float(item.MeasuredValueSequence[0].NumericValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return out


def _plane_deviation(points: np.ndarray) -> float:
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred)[2][-1]
    return float(np.abs(centred @ normal).max())


def test_a_curved_outline_without_view_direction_lies_on_its_least_squares_plane(tmp_path):
    """The reported crash ('must contain co-planar points'): a non-planar outline is written as
    a POLYGON on its best-fit plane, each point moved only across that plane."""
    outline = _curved_outline()
    assert _plane_deviation(outline) > 1.0  # really not planar
    notes: list[str] = []
    ds = plan_sr_dataset(_doc([outline.tolist()]), _source(), notes=notes)
    ((kind, points),) = _scoords(ds)
    assert kind == "POLYGON"
    np.testing.assert_allclose(points[0], points[-1])  # closed
    assert len(points) == len(outline) + 1
    assert _plane_deviation(points.astype(np.float64)) < 1e-3  # FL (float32) in the file
    # Moved along the least-squares normal only: the in-plane shape is kept.
    centred = outline - outline.mean(axis=0)
    normal = np.linalg.svd(centred)[2][-1]
    moved = points[:-1] - outline
    np.testing.assert_allclose(moved - np.outer(moved @ normal, normal), 0.0, atol=1e-3)
    assert _areas(ds) == [pytest.approx(70.5)]
    assert notes == []
    assert dciodvfy_errors(write_dataset(ds, tmp_path / "sr.dcm")) == []


def test_an_outline_is_projected_along_the_view_direction():
    outline = _curved_outline()
    view = np.array([0.3, -0.9, 0.3])
    view /= np.linalg.norm(view)
    ds = plan_sr_dataset(_doc([outline.tolist()], view_direction=view), _source())
    ((kind, points),) = _scoords(ds)
    assert kind == "POLYGON"
    moved = points[:-1] - outline
    # Every point moved along the view direction only (the window as the C-arm sees it) ...
    np.testing.assert_allclose(moved - np.outer(moved @ view, view), 0.0, atol=1e-3)
    # ... onto one plane across it.
    assert np.ptp((points - points.mean(axis=0)) @ view) < 1e-3


def test_an_outline_that_stays_off_plane_is_written_as_a_closed_polyline(monkeypatch):
    import highdicom.spatial

    # Whatever makes the projected points miss highdicom's tolerance, the region falls back to
    # a closed POLYLINE, which SCOORD3D allows off a plane, and the plan says so.
    monkeypatch.setattr(highdicom.spatial, "are_points_coplanar", lambda points, tol: False)
    notes: list[str] = []
    ds = plan_sr_dataset(_doc([_curved_outline().tolist()]), _source(), notes=notes)
    ((kind, points),) = _scoords(ds)
    assert kind == "POLYLINE"
    np.testing.assert_allclose(points[0], points[-1])
    assert _areas(ds) == [pytest.approx(70.5)]
    assert len(notes) == 1 and "not planar" in notes[0] and "POLYLINE" in notes[0]
    assert f"{PLANAR_TOLERANCE_MM:g}" in notes[0]


def test_unusable_items_are_left_out_with_a_note_not_a_crash(tmp_path):
    # An outline with a null coordinate (a non-finite value in plan.json), a zero view
    # direction, and a needle without a target: the SR is still written, with the window's
    # area, and each problem is named.
    broken = _curved_outline().tolist()
    broken[3][1] = None
    needle = {"entry_lps_mm": [0.0, 90.0, 120.0], "target_lps_mm": None, "length_mm": 80.0,
              "min_nerve_clearance_mm": 3.0, "window": "kambin"}
    notes: list[str] = []
    ds = plan_sr_dataset(_doc([broken], view_direction=[0.0, 0.0, 0.0], trajectory=needle),
                         _source(), notes=notes)
    assert _scoords(ds) == []
    assert _areas(ds) == [pytest.approx(70.5)]
    assert any("left Kambin triangle has no usable outline" in n for n in notes), notes
    assert any("left needle left out" in n for n in notes), notes
    assert dciodvfy_errors(write_dataset(ds, tmp_path / "sr.dcm")) == []


def test_a_plan_with_nothing_to_report_is_a_clear_value_error():
    # No window found on any side and no needle: highdicom cannot build an empty measurement
    # report, and the exports turn this message into a note instead of a stack trace.
    doc = {"sides": {"left": {"kambin": {"found": False}, "safe": {"found": False},
                              "trajectory": None}}}
    with pytest.raises(ValueError, match="no window and no needle"):
        plan_sr_dataset(doc, _source())
