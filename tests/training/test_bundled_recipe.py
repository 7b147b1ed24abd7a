"""The GPU retraining recipe (``training.bundled_recipe``): packed cases, the model grid without
SimpleITK, the torch decision-weight fit, and a tiny CPU run of the device path with SimpleITK,
nibabel, pydicom and VTK blocked (as on the GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.preprocess import CTNormalisation
from spinect_core.training.bundled_recipe import (
    AIR_HU, PACKED_PHANTOM_LABELS, _Run, _wait_for_file, compact_case,
    fit_decision_weights_torch, load_packed_case, pack_case, pack_phantoms,
    patient_phantom_options, prepared_case,
)
from spinect_core.training.calibration import fit_decision_weights
from spinect_core.training.cases import Case
from spinect_core.training.loss import UNLABELLED
from spinect_core.volume import Volume

REPO = Path(__file__).resolve().parents[2]


def _synthetic_case(spacing_xyz=(0.7, 0.7, 2.5), shape_zyx=(16, 60, 70), flip_y=True) -> Case:
    """Air around an elliptic body (40 HU, lung-like -850 HU pocket), a 700 HU bone block
    (label 1) and an unlabelled (255) shell around it."""
    nz, ny, nx = shape_zyx
    sx, sy, sz = spacing_xyz
    z, y, x = np.meshgrid(np.arange(nz) * sz, np.arange(ny) * sy, np.arange(nx) * sx,
                          indexing="ij")
    cy, cx = (ny - 1) * sy / 2, (nx - 1) * sx / 2
    body = ((y - cy) / (0.3 * ny * sy)) ** 2 + ((x - cx) / (0.25 * nx * sx)) ** 2 < 1
    rng = np.random.default_rng(0)
    ct = np.where(body, 40.0, -1000.0) + rng.normal(0, 10, body.shape)
    lung = body & (np.abs(x - cx - 6) < 3) & (np.abs(y - cy) < 3)
    ct[lung] = -850.0
    bone = body & (np.abs(x - cx + 6) < 4) & (np.abs(y - cy) < 4) & (z > 8) & (z < 28)
    ct[bone] = 700.0
    labels = np.zeros(body.shape, np.uint8)
    shell = body & (np.abs(x - cx + 6) < 8) & (np.abs(y - cy) < 8)
    labels[shell] = UNLABELLED
    labels[bone] = 1
    direction = np.diag([1.0, -1.0 if flip_y else 1.0, 1.0])
    vol = Volume(array=ct.astype(np.int16), spacing_mm=spacing_xyz,
                 origin_lps_mm=(-20.0, 15.0, -100.0), direction=direction)
    return Case(case_id="synthetic_real", ct=vol, labels=vol.with_array(labels),
                table=DEFAULT_LABELS)


def _centroid_lps(volume: Volume, mask: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask).mean(axis=0)[::-1]  # (x, y, z) index
    return volume.index_to_lps(idx)


def test_pack_case_resamples_crops_and_round_trips(tmp_path):
    pytest.importorskip("SimpleITK")
    case = _synthetic_case()
    path = pack_case(case, tmp_path / "c.npz", spacing_mm=(1.0, 1.0, 1.0),
                     meta={"source": "synthetic", "labels_kind": "reference bone only"})
    packed, meta = load_packed_case(path)
    assert packed.ct.array.dtype == np.int16 and packed.labels.array.dtype == np.uint8
    np.testing.assert_allclose(packed.ct.spacing_mm, 1.0)
    # on the patient's axes, as the network sees it
    np.testing.assert_allclose(packed.ct.direction, np.eye(3))
    assert meta["source"] == "synthetic" and meta["case_id"] == "synthetic_real"
    # air and lung (<= -500 HU) are stored as -1024, tissue keeps its HU
    a = packed.ct.array
    assert not np.any((a > AIR_HU) & (a <= -500))
    assert (a == AIR_HU).any() and np.median(a[packed.labels.array == 1]) > 600
    # cropped to the body (10 mm margin), smaller than the resampled extent
    full_x = round(70 * 0.7)
    assert a.shape[2] < full_x
    # labels: same classes, same place and size in the world
    assert set(np.unique(packed.labels.array)) == {0, 1, UNLABELLED}
    bone_in, bone_out = case.labels.array == 1, packed.labels.array == 1
    np.testing.assert_allclose(_centroid_lps(packed.labels, bone_out),
                               _centroid_lps(case.labels, bone_in), atol=1.0)
    vol_in = bone_in.sum() * np.prod(case.ct.spacing_mm)
    assert abs(bone_out.sum() * 1.0 - vol_in) / vol_in < 0.15
    assert meta["voxels"]["bone"] == int(bone_out.sum())
    assert meta["voxels"]["unlabelled"] == int((packed.labels.array == UNLABELLED).sum())


def test_compact_case_matches_prepare_case():
    """On the training spacing, the SimpleITK-free model grid equals ``dataset.prepare_case``."""
    pytest.importorskip("SimpleITK")
    from spinect_core.training.dataset import prepare_case

    case = _synthetic_case(spacing_xyz=(1.0, 1.0, 1.0), shape_zyx=(20, 50, 60))
    norm = CTNormalisation.fit([case.ct.array], seed=0)
    patch = (16, 32, 32)
    ref = prepare_case(case, spacing_mm=(1.0, 1.0, 1.0), normalisation=norm, patch_size=patch,
                       oversample_ids=[1])
    compact = compact_case(case, spacing_mm=(1.0, 1.0, 1.0), kind="real")
    got = prepared_case(compact, normalisation=norm, patch_size=patch, oversample_ids=[1])
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got.image, ref.image)
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert got.lr_axis == ref.lr_axis and got.pad_value == ref.pad_value
    np.testing.assert_array_equal(got.class_locations[1], ref.class_locations[1])
    # the normalisation fit on the compact samples equals the fit on the whole case
    refit = CTNormalisation.fit([compact.hu_samples], seed=0)
    assert refit.to_dict() == norm.to_dict()


def test_compact_case_refuses_another_spacing():
    from spinect_core.errors import InputError

    with pytest.raises(InputError, match="pack it"):
        compact_case(_synthetic_case(), spacing_mm=(1.0, 1.0, 1.0), kind="real")


def test_torch_decision_weights_equal_the_numpy_fit():
    rng = np.random.default_rng(3)
    probs, refs = [], []
    for shape in ((10, 12, 14), (8, 16, 12)):
        ref = rng.integers(0, 5, size=shape).astype(np.uint8)
        ref[:2] = 0
        ref[-1, :3] = UNLABELLED
        logits = rng.normal(0, 1, (5, *shape)) + 1.5 * np.eye(5)[np.minimum(ref, 4)].transpose(
            3, 0, 1, 2)
        p = np.exp(logits)
        probs.append((p / p.sum(axis=0, keepdims=True)).astype(np.float32))
        refs.append(ref)
    ladder = (0.25, 0.5, 0.8, 1.0, 1.25, 2.0)
    expected = fit_decision_weights(probs, refs, DEFAULT_LABELS, ladder=ladder,
                                    match_volume=("bone",))
    got = fit_decision_weights_torch(probs, refs, DEFAULT_LABELS, ladder=ladder,
                                     match_volume=("bone",))
    assert got[0] == expected[0]
    assert got[1] == pytest.approx(expected[1], abs=1e-12)
    assert got[2] == pytest.approx(expected[2], abs=1e-12)
    assert got[0]  # some factor moved: the comparison is not vacuous


def test_patient_option_detection():
    kw, note = patient_phantom_options("no_such_field_xyz=patient")
    assert kw is None and "default phantoms only" in note
    kw, note = patient_phantom_options("blur=false")
    assert kw == {"blur": False}
    assert patient_phantom_options(None)[0] is None


#: Not on the GPU machine (tqdm, matplotlib and psutil are, but the path must not need them).
_BLOCKED = ("SimpleITK", "nibabel", "pydicom", "vtk", "vtkmodules", "pyvista", "pyvistaqt",
            "trimesh", "tqdm", "matplotlib", "psutil", "PySide6")


def _run_blocked(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = ("import sys\n"
            f"for n in {_BLOCKED!r}: sys.modules[n] = None\n"
            "from spinect_core.training.bundled_recipe import main\n"
            f"sys.exit(main({args!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_device_run_tiny_without_simpleitk(tmp_path):
    """The device command end to end on the CPU: 2 coarse phantoms + 1 validation phantom
    (2 processes), a packed real case, a DataLoader worker, 3 iterations, intermediate and final
    packages, with the GPU machine's missing modules blocked."""
    from spinect_core.model import load_weights

    cases = tmp_path / "cases"
    # already on the training spacing: packing needs no SimpleITK
    pack_case(_synthetic_case(spacing_xyz=(3.0, 3.0, 3.0), shape_zyx=(20, 30, 30),
                              flip_y=False), cases / "synthetic_real.npz",
              spacing_mm=(3.0, 3.0, 3.0), meta={"labels_kind": "synthetic"})
    # a phantom packed here (as the real-bone ones are, which need VTK): trained as a phantom
    pack_phantoms(cases, [103], options={}, spacing_mm=(3.0, 3.0, 3.0))
    out = tmp_path / "out"
    proc = _run_blocked(["device", "--out", str(out), "--cases", str(cases), "--budget-s", "400",
                         "--spacing", "3", "3", "3", "--patch", "16", "32", "32",
                         "--train-seeds", "100,101", "--patient-seeds", "102",
                         "--patient-option", "no_such_field=1", "--val-seeds", "116",
                         "--batch-size", "2", "--workers", "1", "--processes", "2",
                         "--max-iterations", "3", "--save-every-s", "0",
                         "--real-fraction", "0.5", "--log-every", "1",
                         "--wait-for", str(tmp_path / "never"), "--wait-max-s", "1"],
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json", "model.safetensors", "progress.log", "summary.json", "training_log.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["training"]["iterations"] == 3
    assert summary["phantoms"]["made"] == 3 and summary["patient_like"]["available"] is False
    assert {c["case_id"]: c["kind"] for c in summary["real_cases"]} == {
        "phantom_103_default": "phantom-packed", "synthetic_real": "real"}
    # the flag never appeared: the run waited its maximum, said so and trained anyway
    assert summary["timings_s"]["wait_for_gpu"] >= 1.0
    assert any("did not appear" in n for n in summary["notes"])
    assert summary["loader"]["workers"] == 1 and not any(
        "sampling in this process" in n for n in summary["notes"])
    assert "SimpleITK" not in summary["third_party_modules"]
    assert summary["calibration"]["cases"] == ["phantom_116"]
    loaded = load_weights(out / "model.safetensors")
    card = loaded.card
    assert card.tensors_dtype == "float16" and card.name == "spinect-demo"
    assert card.metrics["device_run"]["final"] is True
    assert card.decision_weights == summary["calibration"]["decision_weights"]
    assert card.training["data"]["train"]["count"] == 4
    assert {"synthetic_real", "phantom_103_default"} <= set(card.training["data"]["train"]["case_ids"])
    np.testing.assert_allclose(card.spacing_mm, 3.0)
    rows = json.loads((out / "training_log.json").read_text())["rows"]
    assert {r["kind"] for r in rows} == {"train", "val"}
    assert "saved the best model so far" in (out / "progress.log").read_text()


def test_pack_phantoms_writes_phantom_cases(tmp_path):
    """Packed phantoms carry complete labels and say so (the device run trains them as
    phantoms); the file name holds the seed and the options, nothing else."""
    (path,) = pack_phantoms(tmp_path, [7], options={}, spacing_mm=(3.0, 3.0, 3.0))
    assert path.name == "phantom_7_default.npz"
    case, meta = load_packed_case(path)
    assert meta["labels_kind"] == PACKED_PHANTOM_LABELS and meta["phantom_options"] == {}
    labels = np.asarray(case.labels.array)
    assert UNLABELLED not in np.unique(labels)
    assert {1, 2, 3, 4} <= set(np.unique(labels).tolist())
    np.testing.assert_allclose(case.ct.spacing_mm, 3.0)
    with pytest.raises(FileExistsRefusedError):  # refused before the phantom is made again
        pack_phantoms(tmp_path, [7], options={}, spacing_mm=(3.0, 3.0, 3.0))


def test_wait_for_file_returns_when_the_file_appears(tmp_path):
    import threading

    run = _Run(tmp_path / "out", budget_s=60.0)
    flag = tmp_path / "gpu-free"
    timer = threading.Timer(0.3, flag.touch)
    timer.start()
    try:
        _wait_for_file(run, flag, 30.0)
    finally:
        timer.join()
    assert 0.2 <= run.summary["timings_s"]["wait_for_gpu"] < 10.0
    assert run.summary["notes"] == []
    _wait_for_file(run, tmp_path / "never", 0.6)
    assert run.summary["timings_s"]["wait_for_gpu"] >= 0.6
    assert "did not appear" in run.summary["notes"][-1]
    run.log_file.close()


def test_device_intensity_augmentation_follows_the_options():
    import torch

    from spinect_core.training.augment import AugmentOptions
    from spinect_core.training.bundled_recipe import augment_intensity_torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 4, 8, 8, generator=g)
    fixed = AugmentOptions(intensity_p=1.0, intensity_scale=(2.0, 2.0), intensity_shift=(1.0, 1.0),
                           noise_p=0.0, flip_p=0.0)
    torch.testing.assert_close(augment_intensity_torch(x, fixed, g), x * 2 + 1)
    assert torch.equal(augment_intensity_torch(x, AugmentOptions.none(), g), x)
    noisy = AugmentOptions(noise_p=1.0, noise_std=(0.5, 0.5), flip_p=0.0)
    big = torch.zeros(4, 1, 16, 32, 32)
    std = augment_intensity_torch(big, noisy, g).std(dim=(1, 2, 3, 4))
    torch.testing.assert_close(std, torch.full((4,), 0.5), atol=0.02, rtol=0)
    # per patch: with p = 0.5 some patches change and some do not
    half = AugmentOptions(intensity_p=0.5, noise_p=0.0, flip_p=0.0)
    out = augment_intensity_torch(torch.ones(64, 1, 2, 2, 2), half, g)
    changed = (out != 1).flatten(1).any(dim=1)
    assert 10 < int(changed.sum()) < 54


def test_phantom_pool_finishes_with_a_sigterm_handler_installed():
    """Pool workers must not inherit the CLI's SIGTERM flag handler (Pool.terminate would hang)."""
    import signal
    import threading
    import time

    from spinect_core.training.bundled_recipe import _generate, _PhantomJob

    jobs = [_PhantomJob(-1 - i, "train", "phantom", (), (3.0, 3.0, 3.0)) for i in range(3)]
    result: dict = {}
    before = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        deadline = time.perf_counter() + 120
        thread = threading.Thread(target=lambda: result.setdefault(
            "r", _generate(jobs, processes=2, deadline=deadline, say=lambda m: None)), daemon=True)
        thread.start()
        thread.join(timeout=60)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert "r" in result, "the phantom pool did not finish"
    made, errors, unfinished = result["r"]
    assert not made and len(errors) == 3 and unfinished == 0
    assert all("seed must be non-negative" in e for e in errors)


def test_loader_plan_falls_back_to_pipes_when_shared_memory_is_short():
    from spinect_core.training.bundled_recipe import _loader_plan

    notes: list = []
    assert _loader_plan(14, 4, 10, notes) == (14, 4, "shm") and not notes
    workers, prefetch, transport = _loader_plan(14, 4, 10 ** 15, notes)
    assert (workers, prefetch, transport) == (14, 2, "pipe") and "pipes" in notes[-1]
    assert _loader_plan(3, 4, 10 ** 15, [], transport="shm") == (3, 4, "shm")
    assert _loader_plan(0, 4, 10, [])[0] == 0


@pytest.mark.parametrize("transport", ["shm", "pipe"])
def test_batches_from_worker_processes(transport):
    import torch

    from spinect_core.training.augment import AugmentOptions
    from spinect_core.training.bundled_recipe import _Batches, _batch_stream_class

    case = _synthetic_case(spacing_xyz=(1.0, 1.0, 1.0), shape_zyx=(20, 50, 60))
    compact = compact_case(case, spacing_mm=(1.0, 1.0, 1.0), kind="real")
    norm = CTNormalisation.fit([compact.hu_samples], seed=0)
    prepared = prepared_case(compact, normalisation=norm, patch_size=(16, 32, 32))
    stream = _batch_stream_class()(
        [prepared, prepared], real=[1], real_fraction=0.5, seed=0,
        sampler_kwargs=dict(patch_size=(16, 32, 32), batch_size=3, table=DEFAULT_LABELS,
                            augment=AugmentOptions.strong()))
    notes: list = []
    batches = _Batches(stream, workers=1, prefetch=2, pin=False, say=lambda m: None,
                       notes=notes, transport=transport)
    try:
        for _ in range(2):
            x, y = next(batches)
            assert isinstance(x, torch.Tensor) and x.shape == (3, 1, 16, 32, 32)
            assert x.dtype == torch.float32 and y.dtype == torch.uint8
            assert y.shape == (3, 16, 32, 32)
            assert set(torch.unique(y).tolist()) <= {0, 1, UNLABELLED}
    finally:
        batches.close()
    assert not notes and batches.local is None  # served by the worker, no fallback
