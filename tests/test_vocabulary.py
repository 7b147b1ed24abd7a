"""The structure vocabulary: one colour per class, read by the app and by every exported picture."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core import vocabulary as V
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.report.render import CLASS_COLOURS, WINDOW_COLOURS, class_of
from spinect_core.reslice.render import LABEL_COLOURS

NAMES = ("bone", "nerve", "disc", "dura", "ilium_left", "L4", "L5", "S1", "sacrum", "root_L5_left",
         "disc_L5S1", "thecal_sac", "vertebrae_L5", "other_bone", "Nerve")


def test_app_and_renderers_colour_every_class_from_the_one_table() -> None:
    pytest.importorskip("PySide6")  # app.colors needs no Qt, but the app package's extras do
    from app import colors

    for name in NAMES:
        assert colors.color_of(name) == V.colour_of(name)
        assert colors.color_of_float(name) == pytest.approx(np.asarray(V.colour_of(name)) / 255.0)
    # The screenshot renderer's classes carry the same RGB as the app's for the same class.
    for cls in ("bone", "nerve", "disc", "dura"):
        assert CLASS_COLOURS[cls] == colors.STRUCTURE_COLORS[cls] == LABEL_COLOURS[cls]
    for name in ("root_L5_left", "disc_L5S1", "dura", "L4", "vertebrae_L5"):
        assert CLASS_COLOURS[class_of(name)] == colors.color_of(name)
    from app.widgets.view3d import WINDOW_COLORS

    assert WINDOW_COLORS == WINDOW_COLOURS == V.WINDOW_COLOURS


def test_names_fall_into_their_tissue_and_unknown_names_get_a_stable_colour() -> None:
    assert [V.class_of_name(n) for n in NAMES] == [
        "bone", "nerve", "disc", "dura", "ilium", "bone", "bone", "bone", "bone", "nerve", "disc",
        "dura", "bone", "bone", "nerve"]
    assert V.class_of_name("kidney_left") is None
    assert V.colour_of("kidney_left") == V.colour_of("Kidney_Left")
    assert V.colour_of("kidney_left") not in V.STRUCTURE_COLOURS.values()
    # Every pair of class colours is told apart at a glance (>= 40 in some channel), the
    # highlight from bone too, and no window outline looks like a structure.
    colours = [*V.STRUCTURE_COLOURS.values(), V.LEVEL_HIGHLIGHT_COLOUR, *V.WINDOW_COLOURS.values()]
    for i, a in enumerate(colours):
        for b in colours[i + 1:]:
            assert np.abs(np.subtract(a, b)).max() >= 20, (a, b)


def test_the_vocabulary_matches_the_label_tables_and_the_anatomy() -> None:
    from spinect_core.anatomy.parts import CLASS_ALIASES, class_masks

    assert set(V.CLASSES) == set(DEFAULT_LABELS.foreground().values())
    assert CLASS_ALIASES is V.CLASS_ALIASES
    assert set(V.CLASS_ALIASES) == set(V.CLASSES) and set(V.CLASSES) <= set(V.STRUCTURE_COLOURS)
    assert V.TRAJECTORY_WINDOWS == ("auto", *V.WINDOW_KINDS)
    for table in (V.WINDOW_COLOURS, V.WINDOW_NAMES, V.WINDOW_LONG_NAMES):
        assert tuple(table) == V.WINDOW_KINDS
    from spinect_core.io.dicom_sr import KIND_NAMES

    assert KIND_NAMES == {"kambin": "Kambin triangle", "safe": "safe (subpedicular) triangle"}
    # An alias of the vocabulary is read as its class by the anatomy.
    from spinect_core.volume import Volume

    vol = Volume(array=np.array([[[0, 1, 2]]], dtype=np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                 origin_lps_mm=(0.0, 0.0, 0.0))
    masks = class_masks(vol, LabelTable({0: "background", 1: "thecal_sac", 2: "Roots"}))
    assert masks["dura"].tolist() == [[[False, True, False]]]
    assert masks["nerve"].tolist() == [[[False, False, True]]]
