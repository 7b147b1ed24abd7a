"""The plan as a DICOM Structured Report (Comprehensive 3D SR, TID 1500 measurement report).

Built from the ``plan.json`` document (so the SR says exactly what the JSON says) with highdicom:

* per side and window found (Kambin, safe): a planar ROI group whose region is the window's
  outline at the plateau view as an SCOORD3D ``POLYGON`` in the CT's frame of reference (LPS mm,
  closed: the first point repeated at the end) with the window area at that view (SCT *Area*,
  mm2) and the largest inscribed circle's diameter (SCT *Diameter*, mm). An outline is not
  planar (its points lie on the bone surfaces around the window), and an SCOORD3D polygon must
  be (highdicom checks it to :data:`PLANAR_TOLERANCE_MM`): it is projected along the view
  direction onto the plane through its centroid (the window as the C-arm sees it), or, for a
  document without a view direction, onto its least-squares plane. Should the result still not
  be planar within the tolerance, the region is written as a closed ``POLYLINE`` (which need not
  be planar) instead;
* per side with a needle: a measurement group whose *Length* (SCT 410668003, mm) references an
  SCOORD3D ``POLYLINE`` of two points, the skin entry first and the target second, in the CT's
  frame of reference, and the needle's minimum clearance to nerve and dura (DCM *Distance*,
  qualifier SCT *Minimum*, mm).

The observer is the SPINECT device; the SR copies the source's Patient and Study modules (from
the evidence, the source CT instances, which it lists in its evidence sequence).

The SR is written after all the planning work, so an item that cannot be encoded (a window
without a usable outline, a needle with missing numbers) never fails the report: the window's
measurements are kept without a region, or the item is left out, and a note says which
(:func:`plan_sr_dataset`'s ``notes``, which the plan exports put in ``plan.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from spinect_core.io.dicom_derived import MANUFACTURER, MODEL_NAME, DicomSource, new_uid
from spinect_core.vectors import unit
from spinect_core.vocabulary import WINDOW_KINDS, WINDOW_LONG_NAMES

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["plan_sr_dataset"]

KIND_NAMES = {kind: f"{name} triangle" for kind, name in WINDOW_LONG_NAMES.items()}


def _version() -> str:
    from spinect_core import __version__

    return str(__version__)


#: Largest distance of a POLYGON's points from their best-fit plane that highdicom accepts, mm
#: (``highdicom.spatial.are_points_coplanar``'s default tolerance).
PLANAR_TOLERANCE_MM = 1e-5


def _unit(vector: Any) -> np.ndarray | None:
    """``vector`` as a finite unit (3,) array, or None when it is missing or degenerate: the SR
    then leaves the region out rather than failing the plan."""
    if vector is None:
        return None
    try:
        return unit(vector, "view direction", min_norm=1e-12)
    except (TypeError, ValueError):
        return None


def _window_region(outline: Any, view_direction: Any) -> tuple[np.ndarray, str] | None:
    """The window's largest outline polygon as an SCOORD3D region that highdicom accepts.

    Parameters
    ----------
    outline : sequence of (N, 3) point lists, LPS mm
        ``outline_lps_mm`` of the plan document; entries that are not finite (N >= 3, 3)
        arrays are ignored.
    view_direction : (3,), optional
        The plateau view's ray direction (LPS): the points are projected along it onto the
        plane through their centroid; without it, onto their least-squares plane (the normal is
        the smallest singular vector of the centred points).

    Returns
    -------
    (points, graphic_type) or None
        ``points`` (M, 3) LPS mm, closed (first point repeated last); ``graphic_type``
        ``"POLYGON"`` when the points are planar within :data:`PLANAR_TOLERANCE_MM`, else
        ``"POLYLINE"`` (the same closed outline, which SCOORD3D allows off a plane). None when no
        outline is usable.
    """
    from highdicom.spatial import are_points_coplanar

    polys = []
    for p in outline or []:
        try:
            a = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):  # a null (non-finite in the plan) coordinate
            continue
        if a.ndim == 2 and a.shape[1] == 3 and len(a) >= 3 and np.isfinite(a).all():
            polys.append(a)
    if not polys:
        return None
    poly = max(polys, key=len)
    if len(poly) > 3 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]  # closed again below, after the projection
    centre = poly.mean(axis=0)
    normal = _unit(view_direction)
    if normal is None:
        normal = np.linalg.svd(poly - centre)[2][-1]
    flat = poly - np.outer((poly - centre) @ normal, normal)
    closed = np.vstack([flat, flat[:1]])  # SCOORD3D POLYGON: first point = last point
    if are_points_coplanar(closed, tol=PLANAR_TOLERANCE_MM):
        return closed, "POLYGON"
    return closed, "POLYLINE"


def plan_sr_dataset(doc: Mapping[str, Any], source: DicomSource, *, series_number: int = 991,
                    series_description: str = "SPINECT plan",
                    series_instance_uid: str | None = None,
                    notes: list[str] | None = None) -> "Dataset":
    """The plan document as a Comprehensive 3D SR.

    Parameters
    ----------
    doc : mapping
        The ``plan.json`` document (:func:`spinect_core.report.exports.plan_document`); LPS mm.
    source : DicomSource
        The CT: frame of reference of the coordinates, patient and study, evidence.
    series_number : int
    series_description : str
    series_instance_uid : str, optional
    notes : list of str, optional
        Receives one line per item that could not be encoded as planned (a window region
        written as a POLYLINE or left out, a window or needle left out), for ``plan.json``.

    Returns
    -------
    pydicom Dataset
        highdicom ``Comprehensive3DSR``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    said = notes if notes is not None else []
    frame = source.frame_of_reference_uid
    groups: list[Any] = []
    for side, sp in (doc.get("sides") or {}).items():
        for kind in WINDOW_KINDS:
            what = f"the {side} {KIND_NAMES[kind]}"
            try:
                group = _window_group(hd, codes, sp.get(kind) or {}, side, kind, frame, said)
            except (ValueError, TypeError, KeyError) as exc:  # never fail the plan over the SR
                said.append(f"SR: {what} left out ({exc})")
                continue
            if group is not None:
                groups.append(group)
        t = sp.get("trajectory")
        if t:
            try:
                groups.append(_needle_group(hd, codes, t, side, frame))
            except (ValueError, TypeError, KeyError) as exc:
                said.append(f"SR: the {side} needle left out ({exc})")
    if not groups:
        # highdicom's MeasurementReport needs at least one measurement group
        raise ValueError("the plan has no window and no needle to report")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=new_uid(), name="SPINECT", manufacturer_name=MANUFACTURER, model_name=MODEL_NAME))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=source.unique_headers(), content=report[0],
        series_instance_uid=series_instance_uid or new_uid(), series_number=int(series_number),
        sop_instance_uid=new_uid(), instance_number=1, manufacturer=MANUFACTURER,
        series_description=series_description)
    sr.SoftwareVersions = _version()
    sr.ManufacturerModelName = MODEL_NAME
    return sr


def _window_group(hd: Any, codes: Any, w: Mapping[str, Any], side: str, kind: str, frame: str,
                  notes: list[str]) -> Any:
    """The measurement group of one window (None when it was not found)."""
    view = w.get("plateau_view") or {}
    if not w.get("found") or view.get("area_mm2") is None:
        return None
    measurements = [hd.sr.Measurement(name=codes.SCT.Area, value=float(view["area_mm2"]),
                                       unit=codes.UCUM.SquareMillimeter)]
    if w.get("inscribed_diameter_mm") is not None:
        measurements.append(hd.sr.Measurement(
            name=codes.SCT.Diameter, value=float(w["inscribed_diameter_mm"]),
            unit=codes.UCUM.Millimeter))
    tracking = hd.sr.TrackingIdentifier(
        uid=new_uid(), identifier=f"{side} {KIND_NAMES[kind]} at the plateau view")
    what = f"the {side} {KIND_NAMES[kind]}"
    try:
        region = _window_region(w.get("outline_lps_mm"), view.get("view_direction_lps"))
        if region is None:
            notes.append(f"SR: {what} has no usable outline; its measurements are written "
                         "without a region")
        else:
            points, graphic_type = region
            if graphic_type != "POLYGON":
                notes.append(f"SR: {what}'s outline is not planar within "
                             f"{PLANAR_TOLERANCE_MM:g} mm; written as a closed {graphic_type}")
            return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking,
                referenced_region=hd.sr.ImageRegion3D(graphic_type=graphic_type,
                                                      graphic_data=points,
                                                      frame_of_reference_uid=frame),
                measurements=measurements)
    except (ValueError, TypeError) as exc:  # keep the numbers without the region
        notes.append(f"SR: {what}'s outline left out ({exc})")
    return hd.sr.MeasurementsAndQualitativeEvaluations(tracking_identifier=tracking,
                                                       measurements=measurements)


def _needle_group(hd: Any, codes: Any, t: Mapping[str, Any], side: str, frame: str) -> Any:
    """The measurement group of one needle: its length on the entry-to-target line, clearance."""
    line = np.array([t["entry_lps_mm"], t["target_lps_mm"]], dtype=np.float64)
    if line.shape != (2, 3) or not np.isfinite(line).all():
        raise ValueError("the needle's entry or target is not a finite LPS point")
    coords = hd.sr.CoordinatesForMeasurement3D(graphic_type="POLYLINE", graphic_data=line,
                                               frame_of_reference_uid=frame)
    measurements = [hd.sr.Measurement(name=codes.SCT.Length, value=float(t["length_mm"]),
                                      unit=codes.UCUM.Millimeter,
                                      referenced_coordinates=[coords])]
    if t.get("min_nerve_clearance_mm") is not None:
        measurements.append(hd.sr.Measurement(
            name=codes.DCM.Distance, qualifier=codes.SCT.Minimum,
            value=float(t["min_nerve_clearance_mm"]), unit=codes.UCUM.Millimeter))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=new_uid(), identifier=f"{side} needle: skin entry to target "
                                      f"via the {t.get('window') or ''} window"),
        measurements=measurements)
