"""The audit's bad inputs through ``spinect info``, ``segment`` and ``plan``, built from a phantom
as the audit did (issue 16, cases 2, 3 and 7): each command refuses in one line with its own
message, exit code 2, and writes nothing.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from spinect_core.io import write_image
from spinect_core.volume import Volume


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from spinect_core.phantom import generate_phantom, write_phantom

    ph = generate_phantom(seed=1, spacing_mm=(2.0, 2.0, 2.0))
    folder = tmp_path_factory.mktemp("case")
    paths = write_phantom(ph, folder)
    return ph, paths["ct"], paths["labels"]


def refused_everywhere(main, capsys, tmp_path, ct_path, labels_path, words: str) -> None:
    """``info``, ``segment`` and ``plan`` each end in one line containing ``words``, exit 2,
    and leave no output."""
    out = tmp_path / "out"
    runs = {
        "info": ["info", str(ct_path)],
        "segment": ["segment", str(ct_path), "-o", str(out / "seg.nii.gz"), "--quiet"],
        "plan": ["plan", str(ct_path), "--segmentation", str(labels_path), "-o",
                 str(out / "plan"), "--quiet"],
    }
    for name, argv in runs.items():
        rc = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert rc == 2, (name, captured.err)
        assert lines[-1].startswith("spinect: error: ") and words in lines[-1], (name, lines)
        assert "Traceback" not in captured.err
        assert not out.exists() or os.listdir(out) == [], (name, os.listdir(out))


def test_a_nan_block_at_the_right_foramen_is_refused(main, phantom, tmp_path, capsys):
    ph, _, labels = phantom
    ct = ph.ct.with_array(ph.ct.array.astype(np.float32))
    centre = np.asarray(ph.meta["landmarks"]["l5s1_foramen_centre_right"], float)
    i, j, k = np.rint(ct.lps_to_index(centre)).astype(int)
    arr = ct.array.copy()
    arr[k - 3:k + 3, j - 3:j + 3, i - 3:i + 3] = np.nan  # 12 mm cube at 2 mm
    path = write_image(ct.with_array(arr), tmp_path / "nan.nii.gz")
    refused_everywhere(main, capsys, tmp_path, path, labels,
                       "has 216 voxels that are not numbers (NaN/inf)")
    # The message says where: the block's voxel range.
    main(["info", str(path)])
    err = capsys.readouterr().err
    assert f"x {i - 3}-{i + 2}, y {j - 3}-{j + 2}, z {k - 3}-{k + 2}" in err


def test_half_a_gzip_stream_is_refused_not_blamed_on_the_anatomy(main, phantom, tmp_path,
                                                                 capsys):
    _, ct, labels = phantom
    data = ct.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    refused_everywhere(main, capsys, tmp_path, cut, labels, "cut.nii.gz is truncated")


def test_zero_spacing_in_the_header_is_refused(main, phantom, tmp_path, capsys):
    _, ct, labels = phantom
    raw = bytearray(gzip.decompress(ct.read_bytes()))
    raw[84:88] = struct.pack("<f", 0.0)  # pixdim[2]: y spacing
    bad = tmp_path / "zero.nii.gz"
    bad.write_bytes(gzip.compress(bytes(raw)))
    refused_everywhere(main, capsys, tmp_path, bad, labels, "zero voxel spacing along y")


def test_a_5x5x5_volume_is_too_small(main, phantom, tmp_path, capsys):
    _, _, labels = phantom
    tiny = write_image(Volume(array=np.full((5, 5, 5), 40, np.int16), spacing_mm=(1, 1, 1),
                              origin_lps_mm=(0, 0, 0)), tmp_path / "tiny.nii.gz")
    refused_everywhere(main, capsys, tmp_path, tiny, labels, "too small")
