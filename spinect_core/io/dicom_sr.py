"""The plan as a DICOM Structured Report (Comprehensive 3D SR, TID 1500 measurement report).

Built from the ``plan.json`` document (so the SR says exactly what the JSON says) with highdicom:

* per side and window found (Kambin, safe): a planar ROI group whose region is the window's
  outline at the plateau view as an SCOORD3D ``POLYGON`` in the CT's frame of reference (LPS mm,
  closed: the first point repeated at the end; projected along the view direction onto the
  plane through its centroid, i.e. the window as the C-arm sees it, since SCOORD3D polygons
  must be planar) with the window area at that view (SCT *Area*,
  mm2) and the largest inscribed circle's diameter (SCT *Diameter*, mm);
* per side with a needle: a measurement group whose *Length* (SCT 410668003, mm) references an
  SCOORD3D ``POLYLINE`` of two points, the skin entry first and the target second, in the CT's
  frame of reference, and the needle's minimum clearance to nerve and dura (DCM *Distance*,
  qualifier SCT *Minimum*, mm).

The observer is the SPINECT device; the SR copies the source's Patient and Study modules (from
the evidence, the source CT instances, which it lists in its evidence sequence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from spinect_core.io.dicom_derived import MANUFACTURER, MODEL_NAME, DicomSource, new_uid

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["plan_sr_dataset"]

KIND_NAMES = {"kambin": "Kambin triangle", "safe": "safe (subpedicular) triangle"}


def _version() -> str:
    from spinect_core import __version__

    return str(__version__)


def _window_polygon(outline: Any, view_direction: Any) -> np.ndarray | None:
    """The largest outline polygon, projected along ``view_direction`` onto the plane through
    its centroid (the window as the C-arm sees it; SCOORD3D polygons must be planar), closed."""
    polys = [np.asarray(p, dtype=np.float64) for p in outline or [] if len(p) >= 3]
    if not polys:
        return None
    poly = max(polys, key=len)
    if view_direction is not None:
        n = np.asarray(view_direction, dtype=np.float64)
        n = n / np.linalg.norm(n)
        centre = poly.mean(axis=0)
        poly = poly - np.outer((poly - centre) @ n, n)
    if not np.allclose(poly[0], poly[-1]):
        poly = np.vstack([poly, poly[:1]])  # SCOORD3D POLYGON: first point = last point
    return poly


def plan_sr_dataset(doc: Mapping[str, Any], source: DicomSource, *, series_number: int = 991,
                    series_description: str = "SPINECT plan",
                    series_instance_uid: str | None = None) -> "Dataset":
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

    Returns
    -------
    pydicom Dataset
        highdicom ``Comprehensive3DSR``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    frame = source.frame_of_reference_uid
    groups: list[Any] = []
    for side, sp in (doc.get("sides") or {}).items():
        for kind in ("kambin", "safe"):
            w = sp.get(kind) or {}
            view = w.get("plateau_view") or {}
            if not w.get("found") or view.get("area_mm2") is None:
                continue
            measurements = [hd.sr.Measurement(name=codes.SCT.Area, value=float(view["area_mm2"]),
                                               unit=codes.UCUM.SquareMillimeter)]
            if w.get("inscribed_diameter_mm") is not None:
                measurements.append(hd.sr.Measurement(
                    name=codes.SCT.Diameter, value=float(w["inscribed_diameter_mm"]),
                    unit=codes.UCUM.Millimeter))
            tracking = hd.sr.TrackingIdentifier(
                uid=new_uid(), identifier=f"{side} {KIND_NAMES[kind]} at the plateau view")
            poly = _window_polygon(w.get("outline_lps_mm"), view.get("view_direction_lps"))
            if poly is not None:
                groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=tracking,
                    referenced_region=hd.sr.ImageRegion3D(graphic_type="POLYGON",
                                                          graphic_data=poly,
                                                          frame_of_reference_uid=frame),
                    measurements=measurements))
            else:
                groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=tracking, measurements=measurements))
        t = sp.get("trajectory")
        if t:
            line = np.array([t["entry_lps_mm"], t["target_lps_mm"]], dtype=np.float64)
            coords = hd.sr.CoordinatesForMeasurement3D(graphic_type="POLYLINE", graphic_data=line,
                                                       frame_of_reference_uid=frame)
            measurements = [hd.sr.Measurement(name=codes.SCT.Length, value=float(t["length_mm"]),
                                              unit=codes.UCUM.Millimeter,
                                              referenced_coordinates=[coords])]
            if t.get("min_nerve_clearance_mm") is not None:
                measurements.append(hd.sr.Measurement(
                    name=codes.DCM.Distance, qualifier=codes.SCT.Minimum,
                    value=float(t["min_nerve_clearance_mm"]), unit=codes.UCUM.Millimeter))
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=new_uid(), identifier=f"{side} needle: skin entry to target "
                                              f"via the {t.get('window') or ''} window"),
                measurements=measurements))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=new_uid(), name="SPINECT", manufacturer_name=MANUFACTURER, model_name=MODEL_NAME))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups or None)
    sr = hd.sr.Comprehensive3DSR(
        evidence=source.unique_headers(), content=report[0],
        series_instance_uid=series_instance_uid or new_uid(), series_number=int(series_number),
        sop_instance_uid=new_uid(), instance_number=1, manufacturer=MANUFACTURER,
        series_description=series_description)
    sr.SoftwareVersions = _version()
    sr.ManufacturerModelName = MODEL_NAME
    return sr
