"""The published JSON Schema of plan.json: shipped with the package, used by the validator."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.planning.plan import PLAN_SCHEMA_VERSION
from spinect_core.report.exports import plan_schema, validate_plan_document


@pytest.fixture(scope="module")
def doc(outputs) -> dict:
    out, _, _ = outputs
    return json.loads((out / "plan.json").read_text(encoding="utf-8"))


def test_the_schema_is_package_data_and_names_this_version(doc) -> None:
    schema = plan_schema()  # read through importlib.resources, as an installed package would
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["schema_version"]["pattern"].startswith(
        "^" + PLAN_SCHEMA_VERSION.split(".")[0])
    assert PLAN_SCHEMA_VERSION == "1.7"
    validate_plan_document(doc)
    # 1.7: where the bones' surfaces lay for the windows (a CT's voxels over 1.5 mm keep the
    # labelled surface: plan.moves_bone_surface).
    coarse = max(doc["ct"]["spacing_mm"]) > 1.5
    assert doc["view_search"]["bone_surface"] == ("labels" if coarse else "ct_half_maximum")
    bad = copy.deepcopy(doc)
    bad["view_search"]["bone_surface"] = "somewhere"
    with pytest.raises(InputError, match="bone_surface"):
        validate_plan_document(bad)


def test_the_validator_reports_schema_violations_by_path(doc) -> None:
    bad = copy.deepcopy(doc)
    bad["sides"]["left"]["kambin"]["found"] = "yes"
    bad["sides"]["right"]["trajectory"]["entry_lps_mm"] = [1.0, 2.0]
    bad["dicom"]["objects"][0]["sop_instance_uid"] = "1.2.abc"
    bad["sides"]["middle"] = bad["sides"]["left"]
    with pytest.raises(InputError) as info:
        validate_plan_document(bad)
    message = str(info.value)
    for part in ("sides.left.kambin.found should be boolean",
                 "sides.right.trajectory.entry_lps_mm has 2 items",
                 "dicom.objects[0].sop_instance_uid", "sides.middle: the key is 'middle'"):
        assert part in message, message
    # A window that was not found needs no views.
    ok = copy.deepcopy(doc)
    ok["sides"]["left"]["safe"].update(found=False, best_view=None, plateau_view=None)
    validate_plan_document(ok)


def test_the_schema_agrees_with_jsonschema_where_installed(doc) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(plan_schema())
    jsonschema.validate(doc, plan_schema())


def test_the_roots_of_schema_1_4_validate(doc) -> None:
    from spinect_core.anatomy.roots import Root

    root = Root(name="exiting_l5", side="left",
                centreline_lps_mm=np.array([[1.0, 2.0, 3.0], [2.0, 2.5, 2.0], [3.0, 3.0, 1.0]]),
                radius_mm=np.array([2.0, 2.5, 2.4]), confidence=0.8, source="fused",
                notes=["the network and the CT agree within 0.6 mm"])
    ok = copy.deepcopy(doc)
    ok["roots"] = {"mode": "fused", "agreement_mm": 2.0, "coordinate_system": "LPS"}
    ok["sides"]["left"]["roots"] = {"exiting_l5": root.to_dict(), "exiting_l4": None,
                                    "traversing_s1": dict(root.to_dict(), source="ct")}
    validate_plan_document(ok)
    bad = copy.deepcopy(ok)
    bad["sides"]["left"]["roots"]["exiting_l5"]["source"] = "guess"
    bad["sides"]["left"]["roots"]["exiting_l5"]["centreline_lps_mm"][0] = [1.0, 2.0]
    del bad["sides"]["left"]["roots"]["traversing_s1"]
    bad["roots"]["mode"] = "both"
    with pytest.raises(InputError) as info:
        validate_plan_document(bad)
    message = str(info.value)
    for part in ("sides.left.roots.exiting_l5.source", "centreline_lps_mm[0] has 2 items",
                 "traversing_s1", "roots.mode"):
        assert part in message, message
    try:
        import jsonschema
    except ImportError:  # the package's own validator above is the one plan exports use
        return
    jsonschema.validate(ok, plan_schema())


def test_the_metal_block_is_written_and_checked(doc) -> None:
    """1.6: every plan lists the CT's metal (none on the demo phantom); a malformed block is a
    schema violation."""
    assert doc["metal"]["pieces"] == [] and doc["metal"]["near"] is False
    assert doc["metal"]["coordinate_system"] == "LPS"
    bad = copy.deepcopy(doc)
    bad["metal"]["pieces"] = [{"volume_ml": 1.0, "centroid_lps_mm": [0.0, 1.0]}]
    with pytest.raises(InputError, match="metal"):
        validate_plan_document(bad)
