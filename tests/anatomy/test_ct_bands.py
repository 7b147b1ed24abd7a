"""Discs the labels bridged: the dark band between two bright endplates on the CT cuts them."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from spinect_core.anatomy.ct_bands import across_bone, bright_plates, dark_bands
from spinect_core.anatomy.levels import derive_parts
from spinect_core.anatomy.parts import PART_ID
from spinect_core.errors import AnatomyError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.volume import Volume
from tests.anatomy.conftest import collapsed_l5s1_disc, landmarks


_plain_cache: dict[int, object] = {}


def _plain_levels(phantom):
    """``derive_parts`` of the phantom's own labels with its CT, computed once per seed; a copy
    each call (the tests change it)."""
    seed = phantom.meta["seed"]
    if seed not in _plain_cache:
        _plain_cache[seed] = derive_parts(phantom.labels, DEFAULT_LABELS, ct=phantom.ct)
    return copy.deepcopy(_plain_cache[seed])


def _stack(dz_mm: float):
    """Two 'bodies' (250 HU marrow, 1 voxel of 700 HU endplate on each face) with a 4 mm disc
    (90 HU) between, in 40 HU soft tissue; the label map calls bodies and disc bone."""
    nz = int(round(60 / dz_mm))
    z = (np.arange(nz) + 0.5) * dz_mm
    hu = np.full((nz, 30, 30), 40.0)
    bone = np.zeros(hu.shape, bool)
    inside = (slice(None), slice(5, 25), slice(5, 25))
    col = np.full(nz, 40.0)
    col[(z >= 8) & (z < 28)] = 250.0
    col[(z >= 32) & (z < 52)] = 250.0
    for lo, hi in ((8, 28), (32, 52)):
        ends = np.flatnonzero((z >= lo) & (z < hi))
        col[ends[[0, -1]]] = 700.0
    col[(z >= 28) & (z < 32)] = 90.0
    hu[inside] = col[:, None, None]
    bone[inside] = ((z >= 8) & (z < 52))[:, None, None]
    grid = Volume(array=hu.astype(np.int16), spacing_mm=np.array([1.0, 1.0, dz_mm]),
                  origin_lps_mm=np.zeros(3), direction=np.eye(3))
    disc = ((z >= 28) & (z < 32))[:, None, None] & bone
    return grid, bone, disc


@pytest.mark.parametrize("dz_mm", [1.0, 2.0])
def test_the_disc_is_the_band_and_the_marrow_is_not(dz_mm) -> None:
    grid, bone, disc = _stack(dz_mm)
    band = dark_bands(grid.array, bone, grid, min_mm3=50.0)
    assert band.any()
    assert np.count_nonzero(band & disc) >= 0.5 * np.count_nonzero(disc)
    assert band[:, 15, 15].any()                          # through the middle of the column
    assert not np.any(band & bone & ~disc)               # never the marrow or an endplate


def test_one_bright_side_is_not_a_band() -> None:
    """Marrow beside an endplate, soft tissue beside a body: brighter on one side only."""
    grid, bone, disc = _stack(1.0)
    hu = grid.array.copy()
    hu[disc] = 250                                        # no disc: marrow, endplates, marrow
    assert not dark_bands(hu, bone, grid, min_mm3=50.0).any()


def test_a_bridged_disc_is_found_on_the_ct(phantom) -> None:
    """The L5/S1 disc relabelled bone (a network or threshold that bridged it): the labels
    alone cannot name the level; with the CT the dark band is the disc, recorded as such."""
    labels = phantom.labels.array.copy()
    labels[labels == DEFAULT_LABELS.id_of("disc")] = DEFAULT_LABELS.id_of("bone")
    bridged = phantom.labels.with_array(labels)
    try:
        blind = derive_parts(bridged, DEFAULT_LABELS)
    except AnatomyError:
        blind = None
    true_centre = landmarks(phantom)["l5s1_disc_centre"]

    def disc_centre(derived) -> np.ndarray:
        zz, yy, xx = np.nonzero(derived.parts == PART_ID["disc_L5S1"])
        return bridged.index_to_lps(np.stack([xx, yy, zz], axis=1).astype(float)).mean(axis=0)

    if blind is not None:                      # the labels alone: no disc of their own
        assert blind.disc_source != "ct"
    seen = derive_parts(bridged, DEFAULT_LABELS, ct=phantom.ct)
    assert seen.disc_source == "ct"
    assert np.linalg.norm(disc_centre(seen) - true_centre) < 4.0
    assert any("dark band" in r for r in seen.evidence.reasons)
    moved = Volume(array=phantom.ct.array, spacing_mm=phantom.ct.spacing_mm,
                   origin_lps_mm=phantom.ct.origin_lps_mm + 5.0, direction=phantom.ct.direction)
    with pytest.raises(ValueError, match="one grid"):
        derive_parts(bridged, DEFAULT_LABELS, ct=moved)


def _collapsed_stack(dz_mm: float):
    """One 'body' 44 mm tall (250 HU marrow) labelled bone throughout, crossed in its middle by
    a 3 mm plate at 650 HU: the two endplates of a collapsed disc, joined by partial volume."""
    nz = int(round(60 / dz_mm))
    z = (np.arange(nz) + 0.5) * dz_mm
    hu = np.full((nz, 30, 30), 40.0)
    inside = (slice(None), slice(5, 25), slice(5, 25))
    col = np.where((z >= 8) & (z < 52), 250.0, 40.0)
    plate_rows = (z >= 28.5) & (z < 31.5)
    col[plate_rows] = 650.0
    hu[inside] = col[:, None, None]
    bone = np.zeros(hu.shape, bool)
    bone[inside] = ((z >= 8) & (z < 52))[:, None, None]
    grid = Volume(array=hu.astype(np.int16), spacing_mm=np.array([1.0, 1.0, dz_mm]),
                  origin_lps_mm=np.zeros(3), direction=np.eye(3))
    return grid, bone, plate_rows[:, None, None] & bone


@pytest.mark.parametrize("dz_mm", [1.0, 3.0])
def test_a_collapsed_disc_is_a_bright_plate_and_the_marrow_is_not(dz_mm) -> None:
    grid, bone, plate = _collapsed_stack(dz_mm)
    found = bright_plates(grid.array, bone, grid, min_mm3=50.0)
    assert found[:, 15, 15].any()                         # through the middle of the column
    assert np.count_nonzero(found & plate) >= 0.5 * np.count_nonzero(plate[:, 10:20, 10:20])
    assert not np.any(found & ~plate)                     # never the marrow beside it


def test_an_endplate_facing_a_disc_is_not_a_plate() -> None:
    """The disc is not bone: the endplate beside it is bright against the marrow only."""
    grid, bone, disc = _stack(1.0)
    assert not bright_plates(grid.array, bone & ~disc, grid, min_mm3=50.0).any()


def test_across_bone_reaches_the_surface_in_plane_only() -> None:
    grid, bone, plate = _collapsed_stack(1.0)
    deep = np.zeros_like(plate)
    deep[29, 9:21, 9:21] = True                           # found only 4 mm inside the bone
    wide = across_bone(deep, bone, grid, reach_mm=6.0)
    assert wide[29][bone[29]].all()                       # the whole cross-section of the body
    assert not np.any(wide & ~bone)                       # never outside the bone
    assert not wide[27].any() and not wide[31].any()      # not along the column


def test_l5_joined_to_the_sacrum_is_cut_at_its_collapsed_disc(phantom) -> None:
    """A collapsed L5/S1 disc the labels call bone: the labels alone join L5 to the sacrum and
    name L4 as L5 (measured on real-bone phantoms' network labels at 1-3 mm: planned at L4/L5,
    35 mm off, "moderate"); with the CT the plate of its endplates is the disc, and the level
    is in doubt."""
    true_centre = landmarks(phantom)["l5s1_disc_centre"]
    joined, ct = collapsed_l5s1_disc(phantom)

    def disc_error(derived) -> float:
        zz, yy, xx = np.nonzero(derived.parts == PART_ID["disc_L5S1"])
        centre = joined.index_to_lps(np.stack([xx, yy, zz], axis=1).astype(float)).mean(axis=0)
        return float(np.linalg.norm(centre - true_centre))

    blind = derive_parts(joined, DEFAULT_LABELS)
    assert disc_error(blind) > 25.0                 # one level too high, and nothing says so
    assert not blind.evidence.warnings
    seen = derive_parts(joined, DEFAULT_LABELS, ct=ct)
    assert disc_error(seen) < 4.0
    assert seen.disc_source == "ct"
    assert seen.evidence.confidence == "low"
    assert any("collapsed disc" in w for w in seen.evidence.warnings)
    plain = _plain_levels(phantom)
    assert not any("collapsed disc" in w for w in plain.evidence.warnings)


def test_across_bone_keeps_a_tilted_plate_in_its_plane() -> None:
    """A disc tilted 39 degrees (as at L5/S1): the cut reaches the surface within the plate's
    plane and does not eat the bodies above and below it."""
    shape = (60, 60, 60)
    z, y, x = np.indices(shape).astype(float)
    bone = np.zeros(shape, bool)
    bone[5:55, 5:55, 5:55] = True
    off_plane = (z - 30.0 - 0.8 * (y - 30.0)) / np.sqrt(1.0 + 0.8 ** 2)      # mm from the plane
    plate = (np.abs(off_plane) <= 0.7) & (np.abs(y - 30) <= 10) & (np.abs(x - 30) <= 10)
    grid = Volume(array=np.zeros(shape, np.int16), spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3),
                  direction=np.eye(3))
    wide = across_bone(plate, bone, grid, reach_mm=6.0)
    assert wide.sum() > 1.5 * plate.sum()                 # widened ...
    assert np.abs(off_plane[wide]).max() <= 1.3           # ... within the plate's own plane
    ring = (np.abs(off_plane) <= 0.5) & bone & (np.abs(y - 30) <= 13) & (np.abs(x - 30) <= 14)
    assert wide[ring].all()                               # 4-5 mm past the plate all round


def _s1_slab(phantom, plain, *, below_mm: float, half_mm: float):
    """The endplates of ``plain.parts`` (:func:`~spinect_core.anatomy.landmarks.endplates`),
    its S1 voxels (index arrays z, y, x) and which of them lie in a slab ``2 * half_mm`` thick,
    parallel to the S1 endplate and ``below_mm`` under its centre, within 18 mm of the column's
    axis (bool, one per voxel)."""
    from spinect_core.anatomy.landmarks import endplates

    core = endplates(phantom.labels, plain.parts, [])
    n1, c1 = core.s1_endplate_normal_lps, core.s1_endplate_centre_lps
    zz, yy, xx = np.nonzero(plain.parts == PART_ID["S1"])
    rel = (phantom.labels.index_to_lps(np.stack([xx, yy, zz], 1).astype(float))
           - (c1 - below_mm * n1))
    height = rel @ n1
    across = np.linalg.norm(rel - np.outer(height, n1), axis=1)
    return core, (zz, yy, xx), (np.abs(height) <= half_mm) & (across <= 18.0)


def test_a_sclerotic_s1_s2_junction_does_not_move_the_level(phantom) -> None:
    """A bright plate across the sacrum 28 mm below the S1 endplate (a sclerotic S1/S2
    junction) is cut like a collapsed disc, but the piece above it is still the sacrum (its
    alae and the ilia beside it): the level stays (measured the same way on six real-bone
    phantoms at 3 mm, true and fused labels: none moved)."""
    from spinect_core.anatomy.landmarks import endplates

    plain = _plain_levels(phantom)
    core, (zz, yy, xx), plate = _s1_slab(phantom, plain, below_mm=28.0, half_mm=1.5)
    assert plate.sum() > 300
    hu = phantom.ct.array.copy()
    hu[zz[plate], yy[plate], xx[plate]] = 650
    seen = derive_parts(phantom.labels, DEFAULT_LABELS, ct=phantom.ct.with_array(hu))
    moved = endplates(phantom.labels, seen.parts, []).disc_centre_lps - core.disc_centre_lps
    assert np.linalg.norm(moved) < 2.0
    assert not any("joined L5 to the sacrum" in w for w in seen.evidence.warnings)


def test_l4_joined_to_l5_is_parted_at_its_collapsed_disc(phantom) -> None:
    """A collapsed L4/L5 disc the labels call bone: the level stands, but the part named L5 held
    L4 too and its pedicle landmarks were 9-25 mm off; with the CT the plate parts them."""
    from spinect_core.anatomy import identify_lumbosacral
    from tests.anatomy.conftest import collapsed_l4l5_disc

    joined, ct = collapsed_l4l5_disc(phantom)
    reference = identify_lumbosacral(phantom.labels, DEFAULT_LABELS, ct=phantom.ct)
    blind = identify_lumbosacral(joined, DEFAULT_LABELS)
    seen = identify_lumbosacral(joined, DEFAULT_LABELS, ct=ct)

    def pedicle_error(anatomy) -> float:
        return max(float(np.linalg.norm(anatomy.sides[s].pedicle_centre_lps
                                        - reference.sides[s].pedicle_centre_lps))
                   for s in ("left", "right"))

    assert pedicle_error(blind) > 8.0
    assert pedicle_error(seen) < 4.0
    true_disc = landmarks(phantom)["l5s1_disc_centre"]
    assert np.linalg.norm(seen.disc_centre_lps - true_disc) < 2.0        # the level stands
    assert any("joined L4 to L5" in w for w in seen.level_evidence.warnings)
    assert not any("not separated" in w for w in seen.level_evidence.warnings)


def _bridged_derivation(phantom):
    """The phantom's L5/S1 disc labelled bone, and the levels derived from its labels with the
    CT as if its ribs counted four lumbar vertebrae (a sacrum that holds L5): the labels, the
    derivation and the phantom's true disc centre (LPS mm)."""
    labels = phantom.labels.array.copy()
    labels[labels == DEFAULT_LABELS.id_of("disc")] = DEFAULT_LABELS.id_of("bone")
    bridged = phantom.labels.with_array(labels)
    derived = _plain_levels(phantom)
    # L5 and the disc joined to the sacrum: the part named S1; the disc above L5 stands for the
    # first count's "L5/S1" (its L4/L5).
    joined = np.isin(derived.parts, [PART_ID["L5"], PART_ID["disc_L5S1"]])
    derived.parts[joined] = PART_ID["S1"]
    derived.disc_centre_lps = derived.disc_centre_lps + np.array([0.0, 0.0, 30.0])
    derived.evidence.lumbar_count, derived.evidence.rib_count_agrees = 4, False
    derived.evidence.confidence = "moderate"
    return bridged, derived, landmarks(phantom)["l5s1_disc_centre"]


@pytest.mark.parametrize("lumbar_after", [5, 4])
def test_a_disc_filled_inside_s1_moves_the_level_when_the_ribs_want_it(phantom, monkeypatch,
                                                                       lumbar_after) -> None:
    """Labels that fill part of the L5/S1 disc join L5 to the sacrum; the ribs count four lumbar
    vertebrae. The CT's dark band inside the body named S1 is cut and the levels counted again
    (the recount stubbed here: it needs a spine with ribs): with five lumbar vertebrae and the
    new disc at the band the plan moves there at low confidence, with words; otherwise the
    first count stands."""
    from spinect_core.anatomy import levels

    bridged, derived, true_centre = _bridged_derivation(phantom)
    seen: dict = {}

    def recount(labels, table, carved, options, progress, hu=None):
        seen["carved"] = carved
        out = copy.deepcopy(derived)
        out.disc_centre_lps = np.asarray(true_centre, float)
        out.evidence.lumbar_count, out.evidence.rib_count_agrees = lumbar_after, None
        return out

    monkeypatch.setattr(levels, "_derive_coarse_then_fine", recount)
    result = levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                        levels.LevelOptions(), None)
    cut = seen["carved"]
    assert cut is not None and cut.any()
    zz, yy, xx = np.nonzero(cut)
    cut_centre = bridged.index_to_lps(np.stack([xx, yy, zz], 1).astype(float)).mean(axis=0)
    assert np.linalg.norm(cut_centre - true_centre) < 6.0      # the cut is the true disc
    if lumbar_after == 5:
        assert result is not derived
        assert result.evidence.confidence == "low"
        assert result.disc_source == "ct"
        assert any("joined L5 to the sacrum" in w and "darker" in w
                   for w in result.evidence.warnings)
    else:
        assert result is derived
        assert result.evidence.confidence == "moderate"


def test_a_band_whose_normal_points_to_the_side_is_not_a_disc(phantom) -> None:
    """A band inside the body named S1 counts as a disc only when it lies across the column: a
    seam whose normal points left-right (74 degrees out of the sagittal plane, beside the S1
    body of a real CT resampled to 1.5 mm) was cut as the disc and put the disc found 19 mm to
    the side. The true disc's band is kept, the seam is not."""
    from spinect_core.anatomy import levels

    bridged, derived, true_centre = _bridged_derivation(phantom)
    options = levels.LevelOptions()
    sl = levels._roi(bridged, bridged.array.shape, (0, 0, 0), derived.disc_centre_lps,
                     options.plate_search_mm)
    s1 = derived.parts == PART_ID["S1"]
    zz, yy, xx = np.nonzero(s1)
    pts = bridged.index_to_lps(np.stack([xx, yy, zz], 1).astype(float))

    def sheet(centre, normal) -> np.ndarray:
        """S1 voxels within 1.5 mm of a plane and 20 mm of ``centre`` (LPS mm)."""
        rel = pts - centre
        n = np.asarray(normal, float) / np.linalg.norm(normal)
        near = (np.abs(rel @ n) <= 1.5) & (np.linalg.norm(rel, axis=1) <= 20.0)
        out = np.zeros(s1.shape, bool)
        out[zz[near], yy[near], xx[near]] = True
        return out

    disc = sheet(true_centre, (0.0, -0.5, 0.87))          # tilted forward with the sacrum
    seam = sheet(true_centre + np.array([8.0, 0.0, -14.0]), (0.9, 0.0, 0.44))

    def found(band: np.ndarray) -> np.ndarray | None:
        return levels._plate_in(derived, bridged, np.asarray(phantom.ct.array), s1, options,
                                part="S1", finder=lambda hu, bone, grid: band[sl])

    assert seam.sum() > 100 and np.ptp(np.nonzero(seam)[2]) * bridged.spacing_mm[0] >= 16.0
    assert found(seam) is None
    kept = found(disc)
    assert kept is not None and np.array_equal(kept, disc)


def test_a_dark_band_inside_s1_is_not_cut_when_the_ribs_agree(phantom, monkeypatch) -> None:
    """Without the rib count's disagreement a band inside the sacrum (an S1/S2 remnant of a
    disc) is left alone: nothing is recounted."""
    from spinect_core.anatomy import levels

    bridged, derived, _ = _bridged_derivation(phantom)
    derived.evidence.lumbar_count, derived.evidence.rib_count_agrees = 5, True

    def recount(*args, **kwargs):
        raise AssertionError("recounted")

    monkeypatch.setattr(levels, "_derive_coarse_then_fine", recount)
    assert levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                      levels.LevelOptions(), None) is derived


def test_a_dark_s1_s2_band_does_not_move_the_level(phantom) -> None:
    """A dark band across the sacrum 20 mm below the S1 endplate (an S1/S2 remnant of a disc),
    with the ribs counting four lumbar vertebrae (a lumbar rib taken for T12's): the band is
    cut, but counted again the piece above it is still the sacrum (its alae and the ilia beside
    it), so the level stays."""
    from spinect_core.anatomy import levels

    plain = _plain_levels(phantom)
    _, (zz, yy, xx), band = _s1_slab(phantom, plain, below_mm=20.0, half_mm=2.0)
    assert band.sum() > 300
    hu = phantom.ct.array.copy()
    # As dark as a disc against the sacrum's marrow (the phantoms' marrow differs per seed).
    hu[zz[band], yy[band], xx[band]] = np.median(hu[zz, yy, xx]) - 150
    ct = phantom.ct.with_array(hu)
    derived = copy.deepcopy(plain)
    derived.evidence.lumbar_count, derived.evidence.rib_count_agrees = 4, False
    found = levels._plate_cut(derived, phantom.labels, DEFAULT_LABELS, ct, None,
                              levels.LevelOptions(), part="S1", finder=dark_bands)
    assert found is not None                              # the band is found and cut ...
    recut = levels._derive_coarse_then_fine(phantom.labels, DEFAULT_LABELS, found[1],
                                            levels.LevelOptions(), None, hu=hu)
    assert np.linalg.norm(recut.disc_centre_lps - plain.disc_centre_lps) < 3.0  # ... in vain
    result = levels._split_bridged_disc(derived, phantom.labels, DEFAULT_LABELS, ct, None,
                                        levels.LevelOptions(), None)
    assert result is derived
    assert not any("joined L5 to the sacrum" in w for w in result.evidence.warnings)


def _endplate_over_a_disc(*, disc_hu: float, middle_hu: float | None = None):
    """A column 40 x 40 mm, labelled bone from z 10 to 70 mm (index z runs cranially): L5's
    marrow (250 HU) above z 43, its inferior endplate a 3 mm plate at 700 HU (z 40-43), a disc
    8 mm high (z 32-40) at ``disc_hu`` and S1's marrow below, all named S1 by a first count that
    put its disc (the one above) at z 80 mm. Returns (labels, ct, derived stand-in, z of the
    disc's middle)."""
    from types import SimpleNamespace

    nz = 90
    z = np.arange(nz) + 0.5
    col = np.where((z >= 10) & (z < 70), 250.0, 40.0)
    col[(z >= 40) & (z < 43)] = 700.0
    col[(z >= 32) & (z < 40)] = disc_hu
    if middle_hu is not None:        # a collapsed disc: two endplates (z 38-40, 43-45), between
        col[(z >= 38) & (z < 45)] = 700.0
        col[(z >= 40) & (z < 43)] = middle_hu
    hu = np.full((nz, 60, 60), 40.0)
    inside = (slice(None), slice(10, 50), slice(10, 50))
    hu[inside] = col[:, None, None]
    labels = np.zeros(hu.shape, np.uint8)
    labels[inside] = np.where((z >= 10) & (z < 70), DEFAULT_LABELS.id_of("bone"), 0)[:, None, None]
    grid = Volume(array=hu.astype(np.int16), spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3),
                  direction=np.eye(3))
    parts = np.where(labels > 0, PART_ID["S1"], 0).astype(np.uint8)
    derived = SimpleNamespace(parts=parts, disc_centre_lps=np.array([29.5, 29.5, 80.0]))
    return grid.with_array(labels), grid, derived, 36.0


def test_an_endplate_over_a_bridged_disc_gives_the_cut_to_the_disc_beyond_it() -> None:
    """L5's inferior endplate over a disc of normal height that the labels call bone is a
    bright plate (brighter than the marrow above and the disc below): cut there, the levels took
    the right disc one endplate too high (TotalSegmentator's real CT at 1.25 mm: the disc centre
    10 mm above the disc). The dark band just beyond the plate, the disc, is cut instead; a
    collapsed disc's plate, with marrow on both sides, stays the cut."""
    from spinect_core.anatomy import levels as lv

    labels, ct, derived, disc_z = _endplate_over_a_disc(disc_hu=90.0)
    centre, cut = lv._plate_cut(derived, labels, DEFAULT_LABELS, ct, None, lv.LevelOptions(),
                                part="S1")
    assert abs(centre[2] - disc_z) <= 2.0, centre
    assert not cut[41].any()                       # the endplate stays L5's bone
    collapsed_labels, collapsed_ct, derived, _ = _endplate_over_a_disc(disc_hu=250.0)
    centre, _ = lv._plate_cut(derived, collapsed_labels, DEFAULT_LABELS, collapsed_ct, None,
                              lv.LevelOptions(), part="S1")
    assert abs(centre[2] - 41.5) <= 1.0, centre


def test_a_recount_on_a_cut_counts_on_the_labels_own_voxels_first(monkeypatch) -> None:
    """Blocks of ~2 mm close a cut a voxel or two thick by their majority vote (the real CT at
    1.25 mm counted 3 lumbar vertebrae on the blocks and all 5 on its voxels): the recount on a
    cut is made at full resolution, and on the blocks only when that fails."""
    from spinect_core.anatomy import levels as lv

    calls = []

    def fake(labels, table, carved, options, progress, *, hu=None):
        calls.append(options.coarse_mm)
        if len(calls) == 1 and options.coarse_mm == 0.0 and fail_fine:
            raise AnatomyError("no sacrum on the voxels")
        return "derived"

    monkeypatch.setattr(lv, "_derive_parts", fake)
    labels, ct, _, _ = _endplate_over_a_disc(disc_hu=90.0)
    cut = np.zeros(labels.array.shape, bool)
    fail_fine = False
    assert lv._derive_on_cut(labels, DEFAULT_LABELS, cut, lv.LevelOptions(), None,
                             hu=ct.array) == "derived"
    assert calls == [0.0]
    calls.clear()
    fail_fine = True
    assert lv._derive_on_cut(labels, DEFAULT_LABELS, cut, lv.LevelOptions(), None,
                             hu=ct.array) == "derived"
    assert calls == [0.0, lv.LevelOptions().coarse_mm]


def test_a_collapsed_discs_dark_middle_is_cut_rather_than_its_whole_plate() -> None:
    """The two endplates of a collapsed disc with its dark middle between them: the cut follows
    the middle, not the whole plate, so that L5 keeps its lower body (real-bone phantom 103 at
    1 mm: its L5 pedicle centres 4.8 / 6.5 -> 0.7 / 0.6 mm off)."""
    from spinect_core.anatomy import levels as lv

    labels, ct, derived, _ = _endplate_over_a_disc(disc_hu=250.0, middle_hu=120.0)
    plate = lv._plate_in(derived, labels, np.asarray(ct.array),
                         labels.array == DEFAULT_LABELS.id_of("bone"), lv.LevelOptions(),
                         part="S1")
    assert plate is not None
    centre, cut = lv._plate_cut(derived, labels, DEFAULT_LABELS, ct, None, lv.LevelOptions(),
                                part="S1")
    assert abs(centre[2] - 41.5) <= 1.0, centre
    rows = np.flatnonzero(cut.any(axis=(1, 2)))
    assert rows.min() >= 39 and rows.max() <= 43, rows    # the middle, not both endplates


def test_a_dark_patch_under_half_a_collapsed_plate_is_not_the_disc() -> None:
    """The dark middle of the plate on one side of the column only (real-bone phantom 101 at
    3 mm, fused labels: a patch under 0.44 of its plate, cut alone, put the level 36 mm off): a
    disc crosses the column, so the whole plate stays the cut."""
    from spinect_core.anatomy import levels as lv

    labels, ct, derived, _ = _endplate_over_a_disc(disc_hu=250.0, middle_hu=120.0)
    hu = np.asarray(ct.array).copy()
    hu[40:43, :, :30] = 700                       # the middle dark on the right half only
    ct = ct.with_array(hu)
    centre, cut = lv._plate_cut(derived, labels, DEFAULT_LABELS, ct, None, lv.LevelOptions(),
                                part="S1")
    rows = np.flatnonzero(cut.any(axis=(1, 2)))
    assert rows.min() <= 38 and rows.max() >= 44, rows    # both endplates: the whole plate


@pytest.mark.parametrize("joints_mm, moved", [([31.0, 5.0], True), ([31.0, 30.0], False),
                                              ([12.0], False)])
def test_without_ribs_a_disc_filled_inside_s1_moves_the_level_when_the_joints_want_it(
        phantom, monkeypatch, joints_mm, moved) -> None:
    """No ribs in view: the sacroiliac joints beginning a vertebra below the disc ask for the
    dark band's cut, and their beginning beside S1 below the band keeps it."""
    from spinect_core.anatomy import levels

    bridged, derived, true_centre = _bridged_derivation(phantom)
    ev = derived.evidence
    ev.ribs_found, ev.rib_count_agrees, ev.lumbar_count = False, None, None
    depths = list(joints_mm)
    seen: dict = {}

    def recount(labels, table, carved, options, progress, hu=None):
        seen["carved"] = carved
        out = copy.deepcopy(derived)
        out.disc_centre_lps = np.asarray(true_centre, float)
        return out

    monkeypatch.setattr(levels, "_joints_below_disc_mm", lambda d, grid: depths.pop(0))
    monkeypatch.setattr(levels, "_derive_coarse_then_fine", recount)
    monkeypatch.setattr(levels, "_split_at_neck", lambda *a, **k: None)
    result = levels._split_bridged_disc(derived, bridged, DEFAULT_LABELS, phantom.ct, None,
                                        levels.LevelOptions(), None)
    if not moved:
        assert result is derived
        assert ("carved" in seen) == (joints_mm[0] > 25.0)
        return
    assert result is not derived and result.evidence.confidence == "low"
    assert any("darker" in w and "sacroiliac joints begin beside S1 (5 mm below it; 31 mm"
               in w and "no ribs are in view" in w for w in result.evidence.warnings)
