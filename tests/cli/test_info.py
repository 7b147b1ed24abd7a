"""``spinect info``: human listing, one JSON object, errors as one line with exit code 2."""

import json

import numpy as np
import pytest

import spinect_core.cli as cli
from tests.io import dicom_factory as fac


@pytest.fixture(autouse=True)
def only_info(monkeypatch):
    # other subcommands are written elsewhere; the dispatcher is tested with `info` alone
    monkeypatch.setattr(cli, "COMMANDS", ("info",))


#: A SeriesDescription as some sites type it: the patient's name.
DESCRIPTION = "abdomen Doe Jane"


def write_ct(folder, modality="CT"):
    # 40 x 48 pixels at 0.5 x 0.6 mm, 9 slices at 2.5 mm: above the loader's "too small" limits.
    arr = np.full((9, 48, 40), 40, np.int16)
    arr[:, :8] = -1000
    fac.write_series(folder, arr, fac.grid_positions([1, 2, 3], np.eye(3), 2.5, 9),
                     spacing_xy=(0.5, 0.6), modality=modality, series_description=DESCRIPTION)


def test_json(tmp_path, capsys):
    write_ct(tmp_path)
    assert cli.main(["info", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)  # exactly one JSON object
    assert info["coordinate_system"] == "LPS"
    assert info["size"] == [40, 48, 9]
    assert info["spacing_mm"] == pytest.approx([0.5, 0.6, 2.5])
    assert info["origin_lps_mm"] == pytest.approx([1, 2, 3])
    assert info["direction"] == pytest.approx([1, 0, 0, 0, 1, 0, 0, 0, 1])
    assert info["modality"] == "CT" and info["warnings"] == []
    assert info["slice_thickness_mm"] == pytest.approx(2.0)
    assert len(info["series"]) == 1 and info["series"][0]["number_of_slices"] == 9
    # The free-text description is not printed unless asked for.
    assert "series_description" not in info and "description" not in info["series"][0]
    for secret in (fac.IDENTIFYING_NAME, fac.IDENTIFYING_ID, fac.IDENTIFYING_DATE, "Doe"):
        assert secret not in out


def test_descriptions_only_when_asked(tmp_path, capsys):
    write_ct(tmp_path)
    assert cli.main(["info", str(tmp_path)]) == 0
    assert "Doe" not in capsys.readouterr().out
    assert cli.main(["info", str(tmp_path), "--show-descriptions"]) == 0
    assert DESCRIPTION in capsys.readouterr().out
    assert cli.main(["info", str(tmp_path), "--json", "--show-descriptions"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["series_description"] == DESCRIPTION
    assert info["series"][0]["description"] == DESCRIPTION


def test_human(tmp_path, capsys):
    write_ct(tmp_path)
    assert cli.main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "40 x 48 x 9" in out and "spacing_mm" in out and "origin_lps_mm" in out
    assert "Warnings: 0" in out and fac.IDENTIFYING_NAME not in out and "Doe" not in out


def test_error_is_one_line_exit_2(tmp_path, capsys):
    write_ct(tmp_path, modality="MR")
    assert cli.main(["info", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and "MR" in err and err.startswith("spinect: error:")
    assert fac.IDENTIFYING_NAME not in err


def test_missing_path(tmp_path, capsys):
    assert cli.main(["info", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
