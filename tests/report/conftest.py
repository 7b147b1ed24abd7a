"""One small phantom plan and its written outputs, shared by the report tests (built once)."""

from __future__ import annotations

import dataclasses

import pytest

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.volume import CTMetadata

#: Coarse and quick: the report tests check the files, not the optimum.
QUICK = PlanOptions(coarse_step_deg=15.0, final_step_deg=2.0, optimise_pixel_mm=1.0,
                    report_pixel_mm=0.5)
FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.1234567890"
SERIES = "1.2.826.0.1.3680043.8.498.42"


@pytest.fixture(scope="session")
def planned():
    """(phantom with DICOM-like metadata, plan, engine) on a 2 mm phantom, both sides."""
    ph = generate_phantom(seed=1, spacing_mm=(2.0, 2.0, 2.0))
    ct = dataclasses.replace(ph.ct, metadata=CTMetadata(
        frame_of_reference_uid=FRAME_OF_REFERENCE, series_instance_uid=SERIES,
        study_instance_uid="1.2.826.0.1.3680043.8.498.7", source_format="dicom"))
    engine = PlanEngine(ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                        instance_table=ph.instance_table, options=QUICK,
                        segmentation_source="phantom truth")
    plan = engine.plan()
    return ct, ph, plan, engine


@pytest.fixture(scope="session")
def outputs(planned, tmp_path_factory):
    """(out_dir, written) of write_plan_outputs with meshes in LPS and RAS."""
    from spinect_core.report import write_plan_outputs

    ct, ph, plan, engine = planned
    out = tmp_path_factory.mktemp("plan") / "out"
    calls = []
    written = write_plan_outputs(plan, engine, out, ct=ct, labels=ph.labels, table=DEFAULT_LABELS,
                                 ras=True, progress=lambda f, m: calls.append((f, m)))
    return out, written, calls
