"""The embedded demo case, end to end: the quick start's main job (``spinect demo``).

1. Generate the demo phantom (a synthetic lumbosacral CT with exact labels; fixed seed) and write
   it as NIfTI and as a DICOM series.
2. Load the DICOM series back through :func:`spinect_core.io.load_ct`, the path a user's folder takes.
3. Segment it with the bundled weights, or, while none are installed, with an *untrained* network
   so the whole chain still runs (its scores are then meaningless, and the demo says so).
4. Evaluate the segmentation against the phantom's labels (Dice, IoU, pixel accuracy, HD95,
   surface Dice).
5. Plan L5/S1 on both sides (best views of the Kambin and safe windows, needles) and write every
   export into ``plan/`` (plan.json, markups, meshes, oblique planes, screenshots, HTML report).
   With trained weights the plan uses the network's segmentation, as a user's case would; with
   the untrained stand-in it uses the phantom's exact labels instead, and says so.
6. Write ``demo.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spinect_core.io.atomic import write_text_atomic
from spinect_core.progress import ProgressCallback, report, sub_progress

#: Seed and spacing of the embedded demo case (a routine lumbar CT: 0.8 mm pixels, 1.5 mm slices).
DEMO_SEED = 2019
DEMO_SPACING_MM = (0.8, 0.8, 1.5)


@dataclass(kw_only=True)
class DemoResult:
    """What :func:`run_demo` produced. Paths are inside ``out_dir``."""

    out_dir: Path
    case_dir: Path
    dicom_dir: Path
    segmentation: Path
    weights: str
    trained: bool
    evaluation: Any  # spinect_core.metrics.evaluate.EvaluationReport
    plan: Any = None  # spinect_core.planning.plan.Plan
    plan_dir: Path | None = None
    plan_labels: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def untrained_demo_model(ct_array: Any, labels_array: Any) -> Any:
    """A fast-variant U-Net with He-initialised (untrained) weights and the default label table.

    Used only while no trained weights are bundled, to run the whole pipeline. Its normalisation
    is fitted on the case itself, so the network sees sensibly scaled input.
    """
    import torch

    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.model import LoadedModel, ModelCard, UNet3D, UNetConfig
    from spinect_core.preprocess import CTNormalisation

    torch.manual_seed(DEMO_SEED)
    config = UNetConfig.fast()
    config = UNetConfig(**{**config.to_dict(), "num_classes": DEFAULT_LABELS.num_classes})
    normalisation = CTNormalisation.fit([ct_array], masks=[labels_array > 0])
    card = ModelCard(name="untrained-demo", version="0",
                     description="He-initialised, untrained: exercises the pipeline only",
                     normalisation=normalisation.to_dict(), architecture=config,
                     labels=DEFAULT_LABELS)
    return LoadedModel(model=UNet3D(config).eval(), card=card, path=Path("untrained"))


def run_demo(out_dir: str | Path, *, weights: str | Path | None = None, overwrite: bool = False,
             spacing_mm: tuple[float, float, float] = DEMO_SPACING_MM,
             plan_options: Any = None, plan: bool = True,
             progress: ProgressCallback | None = None) -> DemoResult:
    """Run the demo into ``out_dir`` (created; existing files are kept unless ``overwrite``).

    Parameters
    ----------
    out_dir : path-like
    weights : path-like, optional
        Weights to use instead of the bundled default.
    overwrite : bool
        Replace the files of an earlier demo run in ``out_dir``.
    spacing_mm : 3 floats
        Voxel size of the demo CT (x, y, z); tests use a coarser one.
    plan_options : PlanOptions, optional
        Planning options (default: :class:`~spinect_core.planning.plan.PlanOptions` with the roots
        ``spinect plan`` uses by default, ``fused``).
    plan : bool
        Also plan L5/S1 and write the plan exports.
    progress : callable, optional
        ``progress(fraction, message)``; returning False cancels.
    """
    from spinect_core.errors import NoWeightsInstalledError
    from spinect_core.io import load_ct, save_label_map
    from spinect_core.metrics.evaluate import evaluate_paths
    from spinect_core.model import load_default_weights, load_weights
    from spinect_core.phantom import generate_phantom, write_phantom
    from spinect_core.segment import Segmenter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    notes: list[str] = []
    t = time.perf_counter()

    report(progress, 0.0, "generating the demo phantom")
    phantom = generate_phantom(seed=DEMO_SEED, spacing_mm=spacing_mm,
                               progress=sub_progress(progress, 0.0, 0.1, "phantom: "))
    case_dir = out / "case"
    write_phantom(phantom, case_dir, dicom=True, overwrite=overwrite)
    timings["phantom_s"] = time.perf_counter() - t

    t = time.perf_counter()
    report(progress, 0.12, "loading the DICOM series")
    dicom_dir = case_dir / "dicom"
    ct = load_ct(dicom_dir, progress=sub_progress(progress, 0.12, 0.15, "loading: "))
    notes += ct.warnings
    if not ct.same_grid(phantom.ct, atol=1e-3):
        raise RuntimeError("the demo DICOM series did not load back onto the phantom's grid")
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    trained = True
    try:
        loaded = load_weights(weights) if weights is not None else load_default_weights()
        weights_name = f"{loaded.card.name} {loaded.card.version}"
    except NoWeightsInstalledError:
        trained = False
        loaded = untrained_demo_model(phantom.ct.array, phantom.labels.array)
        weights_name = "untrained fast U-Net (no trained weights are installed yet)"
        notes.append("No trained weights are installed: the segmentation comes from an untrained "
                     "network, so its scores below are meaningless. The demo still exercises "
                     "loading, preprocessing, the sliding window and the mapping back.")
    result = Segmenter(loaded).segment(ct, progress=sub_progress(progress, 0.15, 0.45, ""))
    notes += result.notes
    segmentation = out / "segmentation.nii.gz"
    save_label_map(result.labels, result.table, segmentation, overwrite=overwrite)
    timings["segment_s"] = time.perf_counter() - t

    t = time.perf_counter()
    report(progress, 0.45, "evaluating against the phantom's labels")
    evaluation = evaluate_paths(segmentation, case_dir / "labels.nii.gz")
    timings["evaluate_s"] = time.perf_counter() - t

    plan_result, plan_dir, plan_labels = None, None, ""
    if plan_options is None:
        from spinect_core.planning.plan import PlanOptions

        plan_options = PlanOptions(roots="fused")  # as `spinect plan` and the app
    if plan:
        t = time.perf_counter()
        plan_result, plan_dir, plan_labels = _plan_demo(
            ct, phantom, result, trained=trained, out=out, overwrite=overwrite,
            options=plan_options, progress=sub_progress(progress, 0.5, 0.99, "planning: "))
        notes.append(f"The plan uses {plan_labels}.")
        timings["plan_s"] = time.perf_counter() - t

    summary = {
        "format": "spinect-demo", "version": 1, "coordinate_system": "LPS",
        "phantom": {"seed": DEMO_SEED, "spacing_mm": list(DEMO_SPACING_MM)},
        "ct": ct.geometry_dict(),
        "weights": weights_name, "trained": trained,
        "segmentation": {"path": segmentation.name, **result.summary()},
        "evaluation": evaluation.to_dict(),
        "plan": None if plan_result is None else {"folder": plan_dir.name, "labels": plan_labels,
                                                  "sides": plan_result.to_dict()["sides"]},
        "timings_s": timings, "notes": notes,
    }
    write_text_atomic(out / "demo.json", json.dumps(summary, indent=2) + "\n", overwrite=overwrite)
    report(progress, 1.0, "demo done")
    return DemoResult(out_dir=out, case_dir=case_dir, dicom_dir=dicom_dir,
                      segmentation=segmentation, weights=weights_name, trained=trained,
                      evaluation=evaluation, plan=plan_result, plan_dir=plan_dir,
                      plan_labels=plan_labels, timings_s=timings, notes=notes)


def _plan_demo(ct: Any, phantom: Any, segmentation: Any, *, trained: bool, out: Path,
               overwrite: bool, options: Any, progress: ProgressCallback | None
               ) -> tuple[Any, Path, str]:
    """Plan L5/S1 on the demo CT and write the exports into ``out/plan``."""
    from spinect_core.planning.plan import PlanEngine
    from spinect_core.report.exports import check_output_dir, write_plan_outputs

    plan_dir = out / "plan"
    check_output_dir(plan_dir, overwrite=overwrite)
    if trained:
        labels, table = segmentation.labels, segmentation.table
        bone = getattr(segmentation, "bone_source", "network")
        source = ("the network's segmentation" if bone == "network" else
                  f"the network's segmentation (bone: {bone}, with the CT bone model)")
    else:
        # An untrained network finds no anatomy; plan on the exact labels to show the rest.
        labels, table = phantom.labels, phantom.label_table
        source = "the phantom's exact labels (no trained weights are installed)"
    engine = PlanEngine(ct, labels, table, options=options, segmentation_source=source,
                        progress=sub_progress(progress, 0.0, 0.1))
    result = engine.plan(progress=sub_progress(progress, 0.1, 0.8))
    # The exports read the CT, the label map and its table from the engine (the grid and roots
    # the plan was made on).
    write_plan_outputs(result, engine, plan_dir, overwrite=overwrite,
                       progress=sub_progress(progress, 0.8, 1.0, "exports: "))
    return result, plan_dir, source
