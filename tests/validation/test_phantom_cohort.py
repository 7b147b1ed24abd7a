"""``spinect validate`` end to end on phantoms with the bundled weights (slow: minutes)."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_validate_phantoms_end_to_end(tmp_path, capsys):
    from spinect_core.cli import main
    from spinect_core.phantom import generate_phantom, write_phantom

    cohort = tmp_path / "cohort"
    for seed in (1, 2, 3):
        write_phantom(generate_phantom(seed=seed, spacing_mm=(2.0, 2.0, 2.0)),
                      cohort / f"p{seed}")
    out = tmp_path / "out"
    args = ["validate", str(cohort), "-o", str(out), "--quiet", "--coarse-step", "10",
            "--final-step", "2"]
    assert main(args) == 0
    doc = json.loads((out / "validation.json").read_text())
    summary = doc["summary"]
    assert summary["cases"] == ["p1", "p2", "p3"] and summary["planned_cases"] == summary["cases"]
    # the phantom-trained weights on phantoms: bone and nerve overlap well
    assert summary["table2"]["bone"]["dice"]["mean"] > 0.7
    assert summary["table2"]["nerve"]["dice"]["n"] == 3
    for case in doc["cases"]:
        assert case["plans"]["manual"]["ok"], case["plans"]["manual"]["error"]
        for side in ("left", "right"):
            for kind in ("kambin", "safe"):
                w = case["windows"][side][kind]
                assert w["manual_area_mm2"] is not None and w["manual_area_mm2"] >= 0.0
    row = summary["table4"]["same_view"]["both"]["kambin"]
    assert row["n"] == 6 and row["test"] in ("paired t-test", "Wilcoxon signed-rank", "none")
    assert len(doc["plots"]) == 4 and all((out / p).is_file() for p in doc["plots"])
    capsys.readouterr()
    assert main(args) == 0  # the rerun reuses every case
    assert "3 cases reused" in capsys.readouterr().out
