"""Counting vertebrae from the sacrum and the ribs, on box phantoms with known answers, and the
instance-label path (level names read from the labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.anatomy.counting import (CountOptions, InstanceLevels, LevelEvidence,
                                           along_chain, chain_positions, count_warnings,
                                           evidence_from_instances, fov_bottom_z,
                                           instance_levels, level_below, level_of_name,
                                           require_l5_s1, rib_body)
from spinect_core.anatomy.levels import LevelOptions, _count_pass, derive_parts
from spinect_core.anatomy.parts import PART_ID
from spinect_core.errors import AnatomyError
from spinect_core.labels import LabelTable, STUDY_LABELS
from spinect_core.volume import Volume

SP = 2.0                                   # mm, isotropic
X0, Y0 = -150.0, -70.0                     # LPS of voxel (0, 0, 0) in x and y
NX, NY = 151, 86                           # x -150..150, y -70..100
BODY_H, DISC_H = 26.0, 9.0                 # mm


class Column:
    """A box-phantom spine on a 2 mm grid: bodies (boxes), pedicles and transverse processes
    (bars), ribs (thin bars leaving the transverse process region laterally with a 4 mm joint
    gap), a wedge sacrum with alae, and the ilia flanking it. LPS: x left, y posterior, z up.
    """

    def __init__(self, names: list[str], *, ribs: set[str], sacrum: bool = True,
                 hollow: set[str] = frozenset(), bridged: set[str] = frozenset(),
                 porous: set[str] = frozenset(), left_rib_only: set[str] = frozenset(),
                 l5_tp_to_ilium: bool = False, below_sacrum_top_mm: float = 95.0):
        self.names = names
        step = BODY_H + DISC_H
        n_bodies = len(names)
        self.sacrum_top = 0.0
        # Body k (cranial first) has its bottom endplate at sacrum_top + DISC_H + (n-1-k) * step.
        self.bottom = {nm: self.sacrum_top + DISC_H + (n_bodies - 1 - k) * step
                       for k, nm in enumerate(names)}
        self.z0 = self.sacrum_top - below_sacrum_top_mm
        nz = int((self.bottom[names[0]] + BODY_H + 12.0 - self.z0) / SP) + 1
        self.bone = np.zeros((nz, NY, NX), bool)
        for nm in names:
            zb = self.bottom[nm]
            c = (0.0, 0.0, zb + 0.5 * BODY_H)
            self.box((-22, 22), (-17, 17), (zb, zb + BODY_H))
            if nm in porous:                         # fatty marrow unfilled: half its voxels
                self.box((-20, 20), (-15, 15), (zb + 2, zb + BODY_H - 2), value=False)
                sz, sy, sx = (slice(self._idx(a, o, n), self._idx(b, o, n)) for a, b, o, n in (
                    (zb + 2, zb + BODY_H - 2, self.z0, nz), (-15, 15, Y0, NY), (-20, 20, X0, NX)))
                z, y, x = np.ogrid[sz, sy, sx]
                self.bone[sz, sy, sx] = (z + y + x) % 2 == 0
            if nm in hollow:                         # a body without a core: 2 mm shell only
                self.box((-20, 20), (-15, 15), (zb + 2, zb + BODY_H - 2), value=False)
            if nm in bridged:                        # the disc below it labelled as bone
                self.box((-22, 22), (-17, 17), (zb - DISC_H, zb))
            lumbar = nm.startswith("L")
            for s in (1, -1):
                self.box(sorted((s * 8, s * 16)), (15, 26), (c[2] - 2, c[2] + 8))    # pedicle
                tip = 45.0 if lumbar else 33.0
                if nm == "L5" and l5_tp_to_ilium:
                    tip = 66.0
                self.box(sorted((s * 12, s * tip)), (22, 29), (c[2] + 1, c[2] + 7))  # TP
                if nm in ribs and (s == 1 or nm not in left_rib_only):
                    self.capsule((s * (tip + 4.0), 24.0, c[2] + 2.0),
                                 (s * 125.0, -15.0, c[2] - 30.0), 4.0)
            self.box((-4, 4), (26, 60), (c[2] - 4, c[2] + 8))                      # spinous
        if sacrum:
            t = self.sacrum_top
            self.box((-25, 25), (-18, 18), (t - 30, t))                            # S1 body
            self.box((-58, 58), (-8, 24), (t - 30, t - 4))                         # alae
            for k in range(6):                                                   # S2... tapering
                w = 22 - 3 * k
                self.box((-w, w), (-14 + 5 * k, 14 + 5 * k),
                         (t - 30 - 10 * (k + 1), t - 30 - 10 * k))
            for s in (1, -1):
                self.box(sorted((s * 61, s * 82)), (-20, 40), (t - 85, t + 28))    # ilium

    # --- painting ----------------------------------------------------------------------------
    def _idx(self, v, origin, n):
        return int(np.clip(round((v - origin) / SP), 0, n))

    def box(self, xr, yr, zr, value=True):
        sx = slice(self._idx(xr[0], X0, NX), self._idx(xr[1], X0, NX))
        sy = slice(self._idx(yr[0], Y0, NY), self._idx(yr[1], Y0, NY))
        sz = slice(self._idx(zr[0], self.z0, self.bone.shape[0]),
                   self._idx(zr[1], self.z0, self.bone.shape[0]))
        self.bone[sz, sy, sx] = value

    def capsule(self, a, b, r):
        a, b = np.asarray(a, float), np.asarray(b, float)
        lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
        ix = np.arange(self._idx(lo[0], X0, NX), self._idx(hi[0], X0, NX) + 1)
        iy = np.arange(self._idx(lo[1], Y0, NY), self._idx(hi[1], Y0, NY) + 1)
        iz = np.arange(self._idx(lo[2], self.z0, self.bone.shape[0]),
                       self._idx(hi[2], self.z0, self.bone.shape[0]) + 1)
        ix, iy, iz = ix[ix < NX], iy[iy < NY], iz[iz < self.bone.shape[0]]
        Z, Y, X = np.meshgrid(iz, iy, ix, indexing="ij")
        p = np.stack([X0 + X * SP, Y0 + Y * SP, self.z0 + Z * SP], -1)
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
        d = np.linalg.norm(p - a - t[..., None] * ab, axis=-1)
        self.bone[Z[d <= r], Y[d <= r], X[d <= r]] = True

    def volume(self, *, crop_below_mm: float | None = None) -> Volume:
        """The label map (bone = 1); ``crop_below_mm``: drop slices under that LPS z."""
        arr = self.bone.astype(np.uint8)
        z0 = self.z0
        if crop_below_mm is not None:
            k = int(np.ceil((crop_below_mm - self.z0) / SP))
            arr, z0 = arr[k:], self.z0 + k * SP
        return Volume(array=np.ascontiguousarray(arr), spacing_mm=(SP, SP, SP),
                      origin_lps_mm=(X0, Y0, z0))


def _counted(col: Column) -> LevelEvidence:
    """The evidence of the count alone (pass 1 of the levels: a hollow box body also stops the
    full-resolution pass)."""
    from spinect_core.anatomy.levels import LevelOptions, _count_pass

    return _count_pass(col.volume(), STUDY_LABELS, None, LevelOptions(), None).evidence


def _names(n_thoracic: int, n_lumbar: int) -> list[str]:
    return [f"T{12 - n_thoracic + 1 + i}" for i in range(n_thoracic)] + [
        f"L{i + 1}" for i in range(n_lumbar)]


THORACIC = ("T9", "T10", "T11", "T12")


@pytest.fixture(scope="module")
def normal_column():
    col = Column(_names(4, 5), ribs=set(THORACIC))
    return col, derive_parts(col.volume(), STUDY_LABELS)


def test_sacrum_and_ribs_count_five_lumbar_vertebrae(normal_column):
    col, d = normal_column
    ev = d.evidence
    assert ev.sacrum_found and ev.ilia_found and set(ev.ilia_sides) == {"left", "right"}
    assert ev.s1_endplate_found
    assert ev.ribs_found and ev.rib_levels == {"left": 4, "right": 4}
    assert ev.lumbar_count == 5 and ev.rib_count_agrees is True
    assert ev.levels == ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
    assert ev.confidence == "high" and not ev.warnings
    assert ev.counted_from == "sacrum+ribs"
    # L5 really is the fifth box below the last rib-bearing one.
    l5_mid = col.bottom["L5"] + 0.5 * BODY_H
    assert abs(d.l5_centre_lps[2] - l5_mid) < 4.0
    assert len(d.chain_centres_lps) == len(ev.levels)
    assert np.allclose(ev.level_centres_lps, d.chain_centres_lps)
    json.dumps(ev.to_dict())                          # plain JSON types


@pytest.mark.parametrize("n_lumbar, words", [(6, "lumbarised S1"), (4, "sacralised L5")])
def test_six_or_four_lumbar_vertebrae_warn_transitional_anatomy(n_lumbar, words):
    col = Column(_names(4, n_lumbar), ribs=set(THORACIC))
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.lumbar_count == n_lumbar and ev.rib_count_agrees is False
    assert ev.confidence == "moderate"
    assert any(words in w and f"{n_lumbar} lumbar vertebrae" in w for w in ev.warnings)
    assert ev.levels[-2] == f"L{n_lumbar}" and ev.levels[-1] == "S1"


@pytest.mark.parametrize("n_lumbar", [3, 7])
def test_three_or_seven_lumbar_vertebrae_are_a_wrong_count_with_low_confidence(n_lumbar):
    """No transitional anatomy gives three lumbar vertebrae or seven (measured on a real 3 mm
    CT: L4 taken for the sacrum and planned 82 mm from L5/S1 with moderate confidence)."""
    col = Column(_names(4, n_lumbar), ribs=set(THORACIC))
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.lumbar_count == n_lumbar and ev.rib_count_agrees is False
    assert ev.confidence == "low"
    assert any("the count is unreliable" in w for w in ev.warnings)


def test_a_lone_rib_one_vertebra_below_the_other_sides_lowers_the_confidence():
    """A rib on the left of L1 alone: the last rib-bearing vertebra is "T12" by the usual rule,
    so 4 lumbar vertebrae, but the right side's count is 5 (a lone 12th rib, or a rib given to
    the vertebra below its own): the user is told and the confidence is low."""
    col = Column(_names(4, 5), ribs=set(THORACIC) | {"L1"}, left_rib_only={"L1"})
    ev = _counted(col)
    assert ev.rib_levels == {"left": 5, "right": 4} and ev.lumbar_count == 4
    assert ev.confidence == "low"
    assert any("different vertebrae on the two sides" in w and "right side's last rib there "
               "are 5" in w for w in ev.warnings)


def test_two_lumbar_vertebrae_are_refused():
    """Two lumbar vertebrae between the last rib-bearing one and the sacrum is a count gone
    wrong by three levels (TotalSegmentator's real 3 mm CT as 5 mm slices: bodies merged in
    pairs, L5 into the sacrum; planned 38 mm from L5/S1 at low confidence): refused."""
    with pytest.raises(AnatomyError, match="levels cannot be counted: 2 lumbar vertebrae.*"
                       "no transitional anatomy gives 2") as err:
        derive_parts(Column(_names(4, 2), ribs=set(THORACIC)).volume(), STUDY_LABELS)
    assert err.value.evidence.lumbar_count == 2


def test_no_ribs_counts_from_the_sacrum_with_moderate_confidence():
    col = Column(["L2", "L3", "L4", "L5"], ribs=set())
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.levels == ("L2", "L3", "L4", "L5", "S1") and not ev.ribs_found
    assert ev.lumbar_count is None and ev.rib_count_agrees is None
    assert ev.confidence == "moderate" and any("no ribs" in r for r in ev.reasons)


def test_a_body_without_a_core_is_counted_and_lowers_the_confidence():
    col = Column(_names(4, 5), ribs=set(THORACIC), hollow={"L2"})
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.missing_bodies == 1 and ev.lumbar_count == 5
    assert ev.levels[-2:] == ("L5", "S1") and "L2" not in ev.levels
    assert ev.confidence == "low"


def test_bodies_merged_in_the_labels_are_not_counted_through():
    col = Column(_names(4, 5), ribs=set(THORACIC), bridged={"L1", "L2"})
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.merged_bodies == 1 and ev.confidence == "low"
    assert any("not separated" in w for w in ev.warnings)
    with pytest.raises(AnatomyError, match="not separated.*levels cannot be counted"):
        derive_parts(col.volume(crop_below_mm=col.bottom["L4"] - 4.0), STUDY_LABELS)


def test_crop_just_below_the_l5_s1_disc_is_refused_not_planned_at_l4_l5():
    col = Column(_names(4, 5), ribs=set(THORACIC))
    with pytest.raises(AnatomyError) as err:
        derive_parts(col.volume(crop_below_mm=col.sacrum_top - 4.0), STUDY_LABELS)
    msg = str(err.value)
    assert "sacrum" in msg and "L5/S1 is not in the field of view" in msg
    assert "ends at L5" in msg                          # counted from T12
    assert err.value.evidence.last_level == "L5" and not err.value.evidence.sacrum_found


def test_sacrum_cut_16_mm_below_its_top_is_refused_as_mostly_outside():
    col = Column(_names(4, 5), ribs=set(THORACIC))
    with pytest.raises(AnatomyError, match="ends just below L5.*mostly outside the field of view"):
        derive_parts(col.volume(crop_below_mm=col.sacrum_top - 16.0), STUDY_LABELS)
    # ... while 60 mm of it is plenty.
    d = derive_parts(col.volume(crop_below_mm=col.sacrum_top - 60.0), STUDY_LABELS)
    assert d.evidence.sacrum_found


def test_chain_ending_at_l3_with_ribs_ends_at_l3():
    col = Column(_names(4, 3), ribs=set(THORACIC), sacrum=False)
    with pytest.raises(AnatomyError, match=r"ends at L3 .*T12") as err:
        derive_parts(col.volume(crop_below_mm=col.bottom["L3"] - 4.0), STUDY_LABELS)
    # Where it ends first, then what is missing below it (not the sacrum test's details).
    assert str(err.value).startswith("the scan ends at L3")
    assert "L4, L5 and the sacrum are not in the field of view" in str(err.value)
    assert "ilia" not in str(err.value) and "shaped" not in str(err.value)
    assert err.value.evidence.levels == ("T9", "T10", "T11", "T12", "L1", "L2", "L3")


def test_a_body_the_field_of_view_cuts_is_named_where_the_scan_ends():
    # L4's marrow unfilled (no core) and the scan's edge 10 mm above its lower endplate: the
    # chain ends at L3, but bone fills the column below to the edge (a real chest CT ending in
    # L3 was refused as "ends at L2").
    col = Column(_names(4, 4), ribs=set(THORACIC), sacrum=False, porous={"L4"})
    with pytest.raises(AnatomyError) as err:
        derive_parts(col.volume(crop_below_mm=col.bottom["L4"] + 10.0), STUDY_LABELS)
    assert str(err.value).startswith("the scan ends within L4 (counted down from the last rib-")
    assert "L5 and the sacrum are not in the field of view" in str(err.value)
    assert err.value.evidence.last_level == "L4"
    assert err.value.evidence.levels[-1] == "L3"
    # The same scan ending in the L3/L4 disc: nothing below L3 is a body.
    with pytest.raises(AnatomyError, match=r"^the scan ends at L3 \(") as err:
        derive_parts(col.volume(crop_below_mm=col.bottom["L3"] - DISC_H + 2.0), STUDY_LABELS)
    assert err.value.evidence.last_level == "L3"


def test_along_chain_is_the_arc_length_of_the_projection() -> None:
    centres = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -30.0], [0.0, 10.0, -60.0]])
    assert along_chain(np.array([25.0, 0.0, -12.0]), centres) == pytest.approx(12.0)
    assert along_chain(np.array([0.0, 5.0, -45.0]), centres) == pytest.approx(
        30.0 + np.hypot(5.0, 15.0), abs=1e-6)
    assert along_chain(np.array([0.0, 0.0, 8.0]), centres) == pytest.approx(-8.0)   # above


def test_a_rib_goes_to_the_body_beside_its_head_when_its_basin_is_a_level_away() -> None:
    """Bodies 36 mm apart along the column (T12 at 0, L1 at 36, L2 at 72)."""
    s_bodies = np.array([0.0, 36.0, 72.0])
    # The 12th rib's head 6 mm below T12's centre, its basin L1's (27+ mm away): T12's.
    assert rib_body(1, s_bodies, 6.0, level_mm=36.0) == 0
    # A head at the disc between T12 and L1 is either's: the basin decides.
    assert rib_body(1, s_bodies, 18.0, level_mm=36.0) == 1
    assert rib_body(0, s_bodies, 18.0, level_mm=36.0) == 0
    # As at the cut T12 of a real CT at 3 mm: the head 10 mm below its centre, 26 mm above L1's.
    assert rib_body(1, s_bodies, 10.0, level_mm=36.0) == 0
    # Nearer one body by less than 0.4 of a level, the basin stands.
    assert rib_body(1, s_bodies, 12.0, level_mm=36.0) == 1
    # Two levels away (a tilted column's arch reaching up): the nearest body.
    assert rib_body(2, s_bodies, 2.0, level_mm=36.0) == 0


def test_no_ribs_no_sacrum_cannot_count():
    col = Column(["L1", "L2", "L3"], ribs=set(), sacrum=False)
    with pytest.raises(AnatomyError, match="levels cannot be counted"):
        derive_parts(col.volume(crop_below_mm=col.bottom["L3"] - 4.0), STUDY_LABELS)


def test_lumbar_transverse_processes_are_not_ribs(normal_column):
    _, d = normal_column
    assert d.evidence.rib_levels == {"left": 4, "right": 4}     # L1-L5 processes not counted


# --- pieces -------------------------------------------------------------------------------------
def test_level_names_step_through_the_column():
    assert level_below("T12") == "L1" and level_below("T12", -3) == "T9"
    assert level_below("L5") == "L6" and level_below("C7") == "T1"
    assert level_below("L5", -5) == "T12" and level_below("S1") == "?"


def test_count_warnings_name_the_anomaly():
    assert count_warnings(5) == []
    assert "sacralised L5" in count_warnings(4)[0]
    assert "lumbarised S1" in count_warnings(6)[0] and "L6/S1" in count_warnings(6)[0]


class _B:
    def __init__(self, z, h=12.0):
        self.centre = np.array([0.0, 0.0, z])
        self.top_z, self.bottom_z = z + 0.5 * h, z - 0.5 * h


def test_chain_positions_fill_a_gap_with_the_bodies_it_hides():
    zs = [0.0, -35.0, -70.0, -140.0, -175.0]          # one body missing between -70 and -140
    pos, missing = chain_positions([_B(z) for z in zs], CountOptions())
    assert pos == [0, 1, 2, 4, 5] and missing == 1
    pos, missing = chain_positions([_B(z) for z in (0.0, -35.0, -70.0)], CountOptions())
    assert pos == [0, 1, 2] and missing == 0


def test_fov_bottom_follows_the_grid():
    vol = Volume(array=np.zeros((10, 4, 4), np.uint8), spacing_mm=(1.0, 1.0, 2.0),
                 origin_lps_mm=(0.0, 0.0, 100.0))
    assert fov_bottom_z(vol, 1.0, 1.0) == pytest.approx(99.0)
    assert fov_bottom_z(vol, 50.0, 1.0) == float("inf")
    flipped = Volume(array=np.zeros((10, 4, 4), np.uint8), spacing_mm=(1.0, 1.0, 2.0),
                     origin_lps_mm=(0.0, 0.0, 100.0), direction=np.diag([1.0, 1.0, -1.0]))
    assert fov_bottom_z(flipped, 1.0, 1.0) == pytest.approx(100.0 - 19.0)


def test_evidence_downgrade_never_raises():
    ev = LevelEvidence(confidence="moderate")
    ev.downgrade("high", "x")
    assert ev.confidence == "moderate"
    ev.downgrade("low", "y")
    assert ev.confidence == "low" and ev.reasons == ["x", "y"]
    doubted = LevelEvidence(confidence="high")
    doubted.doubt("the level may be off")
    assert doubted.confidence == "low"
    assert doubted.warnings == doubted.reasons == ["the level may be off"]


# --- instance label maps --------------------------------------------------------------------------
def test_instance_names_map_to_levels():
    assert level_of_name("vertebrae_L3") == "L3" and level_of_name("L5") == "L5"
    assert level_of_name("sacrum") == "S1" and level_of_name("vertebrae_S1") == "S1"
    assert level_of_name("rib_left_12") is None and level_of_name("disc_L5S1") is None


def test_totalsegmentator_names_end_at_l3_refused():
    arr = np.zeros((8, 4, 4), np.int16)
    table = LabelTable({0: "background", 29: "vertebrae_L3", 30: "vertebrae_L2",
                        31: "vertebrae_L1", 32: "vertebrae_T12", 25: "sacrum", 103: "rib_left_12"})
    for k, i in enumerate((32, 31, 30, 29, 103)):
        arr[k] = i
    levels = instance_levels(arr, table)
    assert levels.levels == ("T12", "L1", "L2", "L3") and levels.last == "L3"
    with pytest.raises(AnatomyError, match="ends at L3.*L4, L5 and the sacrum"):
        require_l5_s1(levels)


def test_verse_ids_with_l6_and_sacrum_pass():
    arr = np.array([[[19, 20, 24, 25, 26]]])
    levels = instance_levels(arr)
    assert levels.levels == ("T12", "L1", "L5", "L6", "S1") and levels.has_sacrum
    require_l5_s1(levels)                                  # no error
    with pytest.raises(AnatomyError, match="sacrum but no L5"):
        require_l5_s1(InstanceLevels(("L3", "S1"), (22, 26)))


def test_instance_evidence_says_how_sure_the_labels_are():
    full = evidence_from_instances(instance_levels(np.array([[[19, 20, 21, 22, 23, 24, 26]]])))
    assert full.confidence == "high" and full.lumbar_count == 5 and not full.warnings
    short = evidence_from_instances(InstanceLevels(("L4", "L5", "S1"), (23, 24, 26)))
    assert short.confidence == "moderate" and short.lumbar_count is None
    six = evidence_from_instances(instance_levels(np.array([[[19, 20, 21, 22, 23, 24, 25, 26]]])))
    assert six.confidence == "moderate" and six.lumbar_count == 6
    assert any("lumbarised S1" in w for w in six.warnings)
    json.dumps(six.to_dict())


def test_refusal_words_say_first_what_the_count_found():
    from spinect_core.anatomy.counting import refusal_message

    detail = "no sacrum found: the lowest vertebral body is not shaped like a sacrum"
    above = refusal_message(detail, last_level="L3", counted_from="ribs")
    assert above.startswith("the scan ends at L3 (counted down from the last rib-bearing "
                            "vertebra, T12): L4, L5 and the sacrum are not in the field of view")
    assert "L5/S1 is not in the field of view" in above and "shaped" not in above
    chest = refusal_message(detail, last_level="T12", counted_from="ribs")
    assert "the lumbar spine (L1-L5) and the sacrum are not in the field of view" in chest
    at_l5 = refusal_message(detail, last_level="L5", counted_from="sacrum", just_below=True)
    assert at_l5.startswith("the scan ends just below L5: L5/S1 is not in the field of view")
    assert detail in at_l5 and "counted down" not in at_l5
    merged = refusal_message(detail, last_level=None, counted_from="ribs",
                             uncountable="the bodies are not separated: the levels cannot be "
                                         "counted")
    assert merged.startswith(f"L5/S1 cannot be identified: {detail}, and the bodies")
    no_ribs = refusal_message(detail, last_level=None, counted_from="none")
    assert "no ribs are in view" in no_ribs and "levels cannot be counted" in no_ribs
    # A count past L5: the disc under L5 is in view, the body below it no recognisable sacrum.
    past_l5 = refusal_message(detail, last_level="L6", counted_from="ribs")
    assert past_l5.startswith("the scan ends at L6 (counted down from the last rib-bearing "
                              "vertebra, T12), below L5 by the count: L5/S1 cannot be identified")
    assert "not in the field of view" not in past_l5 and detail in past_l5
    assert "sixth lumbar vertebra" in past_l5
    # The count ends above L5 but the field of view goes on a body's length and more below the
    # last body: the scan does not end there, and the words do not say it does.
    open_below = refusal_message(detail, last_level="L4", counted_from="ribs", fov_below_mm=166.0)
    assert open_below.startswith("L5/S1 cannot be identified: the count ends at L4 (counted "
                                 "down from the last rib-bearing vertebra, T12), but the field "
                                 "of view reaches 166 mm below")
    assert "not in the field of view" not in open_below and detail in open_below
    assert refusal_message(detail, last_level="L4", counted_from="ribs",
                           fov_below_mm=40.0).startswith("the scan ends at L4")
    # So at L5: the sacrum is in view but not recognised (a real 3 mm CT, its grid moved by
    # half a voxel, was refused as "the scan ends at L5: L5/S1 is not in the field of view").
    open_at_l5 = refusal_message(detail, last_level="L5", counted_from="ribs", fov_below_mm=120.0)
    assert open_at_l5.startswith("L5/S1 cannot be identified: the count ends at L5")
    assert "not in the field of view" not in open_at_l5 and detail in open_at_l5
    assert refusal_message(detail, last_level="L5", counted_from="ribs",
                           fov_below_mm=40.0).startswith("the scan ends at L5")
    for words in (above, chest, at_l5, merged, no_ribs, past_l5, open_below, open_at_l5):
        assert words.endswith("use a CT that includes L5 and the sacrum")


@pytest.mark.parametrize("l4_kept_mm", [17.0, 21.0])
def test_l5_beside_the_iliac_crests_under_a_cut_l4_is_not_taken_for_the_sacrum(l4_kept_mm):
    """The field of view cuts L4 to its lower 17-21 mm: L5 looks sacrum-shaped against it (wider,
    larger, with the iliac crests beside it), but the sacrum below L5 is sacrum-shaped against
    L5 and is the sacrum (real-bone phantoms at 3 mm slices were planned at L4/L5 this way)."""
    col = Column(["L4", "L5"], ribs=set())
    vol = col.volume()
    arr = vol.array.copy()
    arr[int((col.bottom["L4"] + l4_kept_mm - col.z0) / SP):] = 0
    derived = derive_parts(vol.with_array(arr), STUDY_LABELS)
    assert abs(derived.l5_centre_lps[2] - (col.bottom["L5"] + 0.5 * BODY_H)) < 4.0


def _column_points(disc_fill: float) -> np.ndarray:
    """LPS points (1 mm apart) of a column 16 mm across running down from z = 0: a body to
    z = -25, a disc to z = -31 filled to ``disc_fill`` of the bone's density, a body to
    z = -110 (a sacrum), nothing below."""
    z, y, x = np.mgrid[-130:1, -8:9, -8:9].astype(float)
    inside = (x ** 2 + y ** 2 <= 64.0) & (z > -110.0)
    disc = (z <= -25.0) & (z > -31.0)
    keep = np.random.default_rng(0).random(z.shape) < np.where(disc, disc_fill, 1.0)
    return np.stack([x, y, z], axis=-1)[inside & keep]


@pytest.mark.parametrize("disc_fill, top", [(0.0, -31.0), (0.45, -28.0)])
def test_the_sacrums_depth_is_measured_from_its_disc_bridged_or_not(disc_fill, top) -> None:
    """An empty disc is a gap, and the body below is measured from its top; a disc the labels
    bridged (45 % filled, no gap along the line) from the narrowest bone between the two
    centres. Measuring it from the lower centre, or from the end of the bone as if that were
    the disc, made a fused label map's sacrum 0-29 mm deep and refused the scan."""
    from spinect_core.anatomy.counting import _depth_below_gap

    fov = Volume(array=np.zeros((160, 40, 40), np.uint8), spacing_mm=np.ones(3),
                 origin_lps_mm=np.array([-20.0, -20.0, -150.0]), direction=np.eye(3))
    depth = _depth_below_gap(_column_points(disc_fill), np.array([0.0, 0.0, -12.0]),
                             np.array([0.0, 0.0, -60.0]), fov, step=3.0)
    assert depth == pytest.approx(110.0 + top, abs=4.0)       # from the body's top to its end


def test_solid_bones_beside_a_hollow_spine_are_not_taken_for_its_bodies():
    """Measured on a real 3 mm CT whose bone labels left the lumbar bodies hollow: a femoral
    head, an acetabulum and an iliac body, in a row 56-81 mm to the left, were named L4, L5
    and S1 with moderate confidence (a plan 92 mm from the L5/S1 disc). Solid bone that far
    off the skeleton's midline is not a vertebral body: the labels are refused by name."""
    col = Column(_names(0, 5), ribs=set(), sacrum=False, hollow=set(_names(0, 5)))
    for k in range(3):                                  # three solid blocks, 35 mm apart
        z = col.bottom["L3"] - 35.0 * k
        col.box((50, 80), (-15, 15), (z, z + 26))
    with pytest.raises(AnatomyError, match="no vertebral body near the skeleton's midline"):
        derive_parts(col.volume(), STUDY_LABELS)


def _porous_below_l5(col: Column) -> Column:
    """Everything below the top of the sacrum porous (every other voxel bone): no core, as a
    sacrum whose fatty marrow the bone labels left out."""
    k = int(round((col.sacrum_top - col.z0) / SP))
    z, y, x = np.indices(col.bone[:k].shape)
    col.bone[:k] &= (z + y + x) % 2 == 0
    return col


def test_a_sacrum_without_a_core_below_the_l5_of_the_rib_count_is_found():
    """Measured on a real 3 mm CT: the bone left the sacrum's fatty marrow out, the count
    stopped at L5 (by the rib count) and the scan was refused, the scan reaching 156 mm further
    down. The bone below the L5/S1 gap is now taken for the sacrum, at low confidence and with
    a warning that the count rests on the ribs alone."""
    col = _porous_below_l5(Column(_names(4, 5), ribs=set(THORACIC)))
    derived = derive_parts(col.volume(), STUDY_LABELS)
    ev = derived.evidence
    assert ev.levels[-2:] == ("L5", "S1") and ev.sacrum_hollow and ev.sacrum_found
    assert ev.counted_from == "ribs" and ev.confidence == "low"
    assert any("counting down from the last rib-bearing vertebra only" in w for w in ev.warnings)
    true_disc = np.array([0.0, 0.0, col.sacrum_top + 0.5 * DISC_H])
    assert np.linalg.norm(derived.disc_centre_lps - true_disc) < 6.0
    assert ev.to_dict()["sacrum_hollow"] is True
    # Its middle below the top is S1 too, not left to the ilia or "other bone".
    z, y, x = np.nonzero(col.bone)
    p = col.volume().index_to_lps(np.stack([x, y, z], axis=1).astype(float))
    middle = (np.abs(p[:, 0]) <= 20.0) & (p[:, 2] < col.sacrum_top - 20.0) & (
        p[:, 2] > col.sacrum_top - 60.0)
    assert np.all(derived.parts[z[middle], y[middle], x[middle]] == PART_ID["S1"])


def test_without_ribs_l5_merged_into_the_sacrum_is_doubted():
    """No ribs, and the L5/S1 disc bridged in the bone labels: L5's core joins the sacrum's and
    the count from the sacrum names L4 "L5", 35 mm off; it was planned so at moderate
    confidence, without a word (a patient-like phantom at 3 mm, arterial phase, the same). The
    link from the last body to the sacrum, 2x the spacing above, now puts it in doubt."""
    col = Column(_names(0, 5), ribs=set(), bridged={"L5"})
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.levels[-2:] == ("L5", "S1")                # L4 and the merged block
    assert ev.confidence == "low"
    assert any("may lie between them" in w and "L4/L5" in w for w in ev.warnings)
    # Bodies in their places: no doubt.
    ev = derive_parts(Column(_names(0, 5), ribs=set()).volume(), STUDY_LABELS).evidence
    assert ev.confidence == "moderate" and not ev.warnings


def test_a_count_gone_wrong_with_a_body_hidden_above_the_sacrum_is_refused():
    """Ribs to L2 count two lumbar vertebrae above the sacrum (no variant gives that) and L5,
    its marrow left out, has no core: the last link, 2.3x the spacing above, says bodies are
    missing there, so the body above the sacrum is not L5 whichever count is right. It is
    refused with that reason (a patient-like phantom at 3 mm, L2-L5 without cores, was planned
    at "low" with L1 as L5, 37 mm off). With L5 solid the count alone went wrong: planned at
    low confidence with the count's warning, as before."""
    ribs = {"T11", "T12", "L1", "L2"}
    with pytest.raises(AnatomyError, match="the levels cannot be counted: 2 lumbar vertebrae"
                                           r".* 2\.3x the spacing .* lie between them"):
        derive_parts(Column(_names(2, 5), ribs=ribs, porous={"L5"}).volume(), STUDY_LABELS)
    ev = derive_parts(Column(_names(2, 5), ribs=ribs).volume(), STUDY_LABELS).evidence
    assert ev.confidence == "low" and ev.levels[-2:] == ("L3", "S1")
    assert any("3 lumbar vertebrae" in w for w in ev.warnings)


def test_a_narrow_sacrum_against_a_body_the_scans_top_cuts_is_doubted():
    """No ribs, L5 and the sacrum without cores, and the scan's top cutting L3 8 mm above its
    lower endplate: L4 passed for the sacrum against L3's cut core (6.1x as large, but as wide)
    and the L3/L4 disc was planned as L5/S1 at "moderate", 69 mm off (a patient-like phantom
    cropped 100 mm above L5/S1: 81 mm). A cut core's size and height are a part's; only the
    width counts, and it is doubted in words. With L3 whole above, nothing changes."""
    col = _porous_below_l5(Column(_names(0, 5), ribs=set(), porous={"L5"}))
    vol = col.volume()
    k = int((col.bottom["L3"] + 8.0 - col.z0) / SP)
    cut = Volume(array=np.ascontiguousarray(vol.array[:k]), spacing_mm=vol.spacing_mm,
                 origin_lps_mm=vol.origin_lps_mm)
    ev = derive_parts(cut, STUDY_LABELS).evidence
    assert ev.confidence == "low"
    assert any("which the top of the field of view cuts" in w and "higher up" in w
               for w in ev.warnings)
    whole = derive_parts(Column(_names(0, 5), ribs=set()).volume(), STUDY_LABELS).evidence
    assert whole.confidence == "moderate" and not whole.warnings


@pytest.mark.parametrize("ribs", [True, False], ids=["ribs", "no-ribs"])
def test_small_marrow_cores_of_a_hollow_sacrum_are_part_of_it(ribs):
    """A sacrum without a core but for two small patches of marrow beside its midline (a real 3
    mm CT's S1 once its bone's cavities were filled: 0.15x L5's core, 35 mm apart): the chain
    took one patch for a sixth lumbar body and the scan was refused ("L6 by the rib count").
    With ribs the patch is part of the sacrum found on the rib count, and both patches are S1
    in the parts; without ribs it stays refused."""
    col = Column(_names(4, 5), ribs=set(THORACIC) if ribs else set())
    t = col.sacrum_top
    col.box((-40, 40), (-18, 18), (t - 90, t - 30))      # the sacrum's lower part, wide
    col = _porous_below_l5(col)
    for s in (1, -1):                                    # 24 mm cubes: cores of ~1 ml
        col.box(sorted((s * 6, s * 30)), (-12, 12), (t - 26, t - 2))
    if not ribs:
        with pytest.raises(AnatomyError, match="L5/S1 cannot be identified|further down the "
                                               "column than the last"):
            derive_parts(col.volume(), STUDY_LABELS)
        return
    derived = derive_parts(col.volume(), STUDY_LABELS)
    ev = derived.evidence
    assert ev.levels[-2:] == ("L5", "S1") and ev.sacrum_hollow and ev.confidence == "low"
    assert any("small core below L5" in r for r in ev.reasons)
    true_disc = np.array([0.0, 0.0, t + 0.5 * DISC_H])
    assert np.linalg.norm(derived.disc_centre_lps - true_disc) < 6.0
    z, y, x = np.nonzero(col.bone)
    p = col.volume().index_to_lps(np.stack([x, y, z], axis=1).astype(float))
    for s in (1, -1):
        patch = ((s * p[:, 0] > 12.0) & (s * p[:, 0] < 24.0) & (np.abs(p[:, 1]) < 6.0)
                 & (p[:, 2] > t - 20.0) & (p[:, 2] < t - 8.0))
        assert patch.any()
        assert np.all(derived.parts[z[patch], y[patch], x[patch]] == PART_ID["S1"])


@pytest.mark.parametrize("n_lumbar, ribs", [(5, set()), (4, set(THORACIC))])
def test_a_sacrum_without_a_core_is_refused_unless_the_ribs_name_l5_above_it(n_lumbar, ribs):
    """Without ribs, or with the rib count naming the last body L4, the bone below could be a
    body without a core: still refused, saying the labels end there, not the scan."""
    col = _porous_below_l5(Column(_names(4, n_lumbar), ribs=ribs))
    with pytest.raises(AnatomyError, match=r"the scan reaches \d+ mm further down the column "
                                           r"than the last vertebral body found") as refusal:
        derive_parts(col.volume(), STUDY_LABELS)
    assert "the scan ends" not in str(refusal.value)
    assert refusal.value.evidence.last_level is None
    assert not refusal.value.evidence.sacrum_hollow


def test_an_l5_hollow_down_its_middle_is_l5_on_both_sides():
    """A body whose marrow the labels left hollow in the middle keeps a core on each side (a
    real 3 mm CT's L5: 23 mm apart); the chain takes one, and the full-resolution pass gave
    the other to "other bone", leaving that side of L5 without a body."""
    col = Column(_names(4, 5), ribs=set(THORACIC))
    zb = col.bottom["L5"]
    col.box((-6, 6), (-17, 17), (zb + 2, zb + 24), value=False)
    derived = derive_parts(col.volume(), STUDY_LABELS)
    z, y, x = np.nonzero(col.bone)
    p = col.volume().index_to_lps(np.stack([x, y, z], axis=1).astype(float))
    for side in (1.0, -1.0):
        half = ((side * p[:, 0] > 8.0) & (side * p[:, 0] < 22.0) & (np.abs(p[:, 1]) < 15.0)
                & (p[:, 2] > zb + 4.0) & (p[:, 2] < zb + 22.0))
        assert np.all(derived.parts[z[half], y[half], x[half]] == PART_ID["L5"])


@pytest.mark.parametrize("ribs", [False, True], ids=["no-ribs", "ribs"])
def test_l5_under_a_small_l4_core_is_not_taken_for_a_sacrum_without_a_core(ribs):
    """The sacrum without a core, and L4 with only a small core (its marrow left out but for
    the middle): L5 looked 6.3x as large as the body above and was taken for the sacrum, planned
    35 mm off at moderate confidence. Its shape is judged against the bodies above too: refused
    without ribs, found below the L5 of the rib count with them."""
    col = _porous_below_l5(Column(_names(4, 5), ribs=set(THORACIC) if ribs else set()))
    zb = col.bottom["L4"]
    col.box((-20, 20), (-15, 15), (zb + 2, zb + 24), value=False)
    col.box((-12, 12), (-12, 12), (zb + 1, zb + 25))
    if not ribs:
        with pytest.raises(AnatomyError, match="further down the column than the last"):
            derive_parts(col.volume(), STUDY_LABELS)
        return
    derived = derive_parts(col.volume(), STUDY_LABELS)
    assert derived.evidence.sacrum_hollow and derived.evidence.levels[-2:] == ("L5", "S1")
    true_disc = np.array([0.0, 0.0, col.sacrum_top + 0.5 * DISC_H])
    assert np.linalg.norm(derived.disc_centre_lps - true_disc) < 6.0


def test_without_ribs_a_deep_field_of_view_is_not_called_out_of_view():
    """No ribs and no sacrum in the bone labels, but the field of view goes on 95 mm below the
    sacrum's place: the refusal says L5/S1 cannot be identified, not that it is out of view (a
    patient-like phantom at 5 mm slices, its sacrum in view but not recognised); cropped just
    below L5 it is out of view."""
    col = Column(_names(0, 5), ribs=set(), sacrum=False)
    with pytest.raises(AnatomyError) as deep:
        derive_parts(col.volume(), STUDY_LABELS)
    assert str(deep.value).startswith("L5/S1 cannot be identified: no sacrum found")
    assert "while the field of view reaches" in str(deep.value)
    with pytest.raises(AnatomyError) as cropped:
        derive_parts(col.volume(crop_below_mm=col.sacrum_top + 2.0), STUDY_LABELS)
    assert str(cropped.value).startswith("L5/S1 is not in the field of view")
    # One body with a core: no spacing to judge the depth by (a real lumbar crop, L3 alone with
    # a core, ends within L4 72 mm below L3's top): out of view.
    col = Column(_names(0, 5), ribs=set(), sacrum=False, porous={"L1", "L2", "L3", "L5"})
    with pytest.raises(AnatomyError) as lone:
        derive_parts(col.volume(), STUDY_LABELS)
    assert str(lone.value).startswith("L5/S1 is not in the field of view")


def test_find_hollow_sacrum_seeds_the_bone_past_the_gap_below_l5():
    """Two bodies and, past a 9 mm gap, a shell of bone going on down the midline for 60 mm:
    the seed is the bone just below the gap, on the column's line; a shell ending 20 mm below
    the gap is too shallow for a sacrum."""
    from spinect_core.anatomy.counting import find_hollow_sacrum

    g = np.mgrid[-20:21:2, -20:21:2].reshape(2, -1).T.astype(float)          # (441, 2) x, y

    def slab(z0, z1):
        return np.array([[x, y, z] for z in np.arange(z0, z1, 2.0) for x, y in g])

    class _Body:
        def __init__(self, z):
            self.centre = np.array([0.0, 0.0, z])

    fov = Volume(array=np.zeros((80, 30, 30), np.uint8), spacing_mm=(2.0, 2.0, 2.0),
                 origin_lps_mm=(-30.0, -30.0, -100.0))
    chain = [_Body(49.0), _Body(13.0)]
    for below, found in ((60.0, True), (20.0, False)):
        pts = np.vstack([slab(36, 62), slab(0, 26), slab(-9 - below, -9)])
        hollow = find_hollow_sacrum(chain, pts, fov, step=2.0, voxel_mm3=8.0,
                                    options=CountOptions())
        assert (hollow is not None) == found
        if found:
            assert -26.0 <= hollow.seed_lps[:, 2].min() and hollow.seed_lps[:, 2].max() <= -9.0
            assert abs(hollow.centre_lps[0]) < 1.0 and hollow.depth_mm >= 55.0


def test_a_lone_body_with_bone_beside_it_is_not_called_the_sacrum():
    """One body in view, bone beside it: a sacrum with L5 out of view, or (a real 40 mm slab of
    the upper abdomen) a thoracic body with its ribs and the arms, once refused as "no vertebral
    body above the sacrum". The refusal says it cannot be told."""
    col = Column(["L5"], ribs=set())
    k = int(round((col.sacrum_top + 2.0 - col.z0) / SP))
    col.bone[k:] = False                               # only the sacrum and the ilia in view
    with pytest.raises(AnatomyError, match="only one vertebral body is in view") as refusal:
        derive_parts(col.volume(), STUDY_LABELS)
    assert "above the sacrum" not in str(refusal.value)


def test_a_sacrum_found_only_taller_than_l5_lowers_the_confidence():
    """A sacrum's core with its alae is wider than L5's (1.9-2.7x on real-bone phantoms); L5
    joined to the top of S1 is only taller (a patient-like phantom at 3 mm: L5 taken for the
    sacrum, 1.08x as wide and 1.8x as tall, planned 38 mm off at moderate confidence). Here a
    sacrum without alae or lower segments: found, but with low confidence and the words."""
    col = Column(_names(0, 5), ribs=set())
    t = col.sacrum_top
    col.box((-58, 58), (-8, 24), (t - 30, t - 4), value=False)      # no alae
    col.box((-25, 25), (-18, 18), (t - 30, t))                       # the S1 body back
    col.box((-30, 30), (-30, 60), (t - 95, t - 45), value=False)    # S3 and below gone
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    w, v, h = ev.sacrum_shape_ratios
    assert w < 1.5 and v < 3.0 and h >= 1.8
    assert ev.levels[-1] == "S1" and ev.confidence == "low"
    assert any("only taller than the one above" in x for x in ev.warnings)


def test_a_sacrum_hardly_larger_than_l5_lowers_the_confidence():
    """Twice a body a level too high passed for the sacrum, wide (1.5x, 1.8x) but with a core
    1.1x as large as the one above (a wide L5 above a coreless sacrum; an L5 above a sacrum
    whose canal the CT bone model filled): planned 32-34 mm off at moderate confidence. A
    candidate whose core is under CountOptions.sacrum_clear_volume_ratio as large is in doubt
    whatever its width; here a sacrum 1.9x as wide and 2.5x as large is not, and is when 3x is
    asked for."""
    col = Column(_names(0, 5), ribs=set())
    t = col.sacrum_top
    col.box((-58, 58), (-8, 24), (t - 30, t - 4), value=False)      # no alae
    col.box((-38, 38), (-12, 12), (t - 30, t))                       # S1's body, 1.9x as wide
    col.box((-30, 30), (-30, 60), (t - 95, t - 45), value=False)    # S3 and below gone
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    w, v, _ = ev.sacrum_shape_ratios
    assert ev.levels[-1] == "S1" and w >= 1.5 and 1.3 <= v < 3.0
    assert ev.confidence == "moderate"
    assert not any("the body taken for the sacrum" in x for x in ev.warnings)
    strict = LevelOptions(counting=CountOptions(sacrum_clear_volume_ratio=3.0))
    ev = derive_parts(col.volume(), STUDY_LABELS, options=strict).evidence
    assert ev.levels[-1] == "S1" and ev.confidence == "low"
    assert any("hardly larger than the one above" in x for x in ev.warnings)


def test_four_lumbar_bodies_with_a_long_gap_above_the_sacrum_are_refused():
    """L5 without a core of its own (its marrow left out): four lumbar bodies by the count and
    a long gap above the sacrum where a body may hide. The count and the chain both say a body
    is missing next to the sacrum, so the disc above the sacrum may be L4/L5 (a patient-like
    phantom at 3 mm was planned 37 mm off at moderate, then at low confidence): the count is
    refused, with its evidence. (The count alone: the hollow box body stops the later passes.)"""
    from spinect_core.anatomy.levels import refuse_a_broken_count

    ev = _counted(Column(_names(4, 5), ribs=set(THORACIC), hollow={"L5"}))
    assert ev.lumbar_count == 4 and ev.confidence == "low"
    assert any("possible sacralised L5" in w for w in ev.warnings)
    assert any("may lie between them" in w for w in ev.warnings)
    with pytest.raises(AnatomyError, match="levels cannot be counted: 4 lumbar vertebrae.*"
                       "spacing of the bodies above it") as err:
        refuse_a_broken_count(ev)
    assert err.value.evidence is ev
    # A true four-lumbar spine has no such gap: moderate, as before, and planned.
    four = _counted(Column(_names(4, 4), ribs=set(THORACIC)))
    assert four.lumbar_count == 4 and four.confidence == "moderate"
    assert not any("may lie between them" in w for w in four.warnings)
    assert not four.chain_faults
    refuse_a_broken_count(four)


def test_bodies_a_second_count_misses_above_its_sacrum_are_counted():
    """The dark-band fallback's count is checked against the labels' own: bodies of the first
    count above the second's sacrum with no body of the second within 10 mm are missed (a
    patient-like phantom's cut count kept L3 and L4 only and took L4 for the sacrum)."""
    from spinect_core.anatomy.levels import _lost_bodies

    first = np.array([[0.0, 0.0, z] for z in (6.0, -28.0, -61.0, -96.0)])
    cut = np.array([[9.0, 3.0, -61.0], [1.0, 0.0, -96.0]])      # L3 moved 9 mm, sacrum at L4
    assert _lost_bodies(first, cut) == 2
    assert _lost_bodies(first, np.array([[0.0, 0.0, z] for z in (6.0, -28.0, -61.0, -96.0,
                                                                -130.0)])) == 0
    assert _lost_bodies(first, np.zeros((0, 3))) == 0
    assert _lost_bodies(first[2:3], cut) == 0                      # one core: no count


def test_a_cut_counts_sacrum_above_a_hollow_column_is_suspect():
    """The labels' own count saw the column go on 194 mm below its last body with bone but no
    core; a cut count that calls that body (or one above it) the sacrum is suspect (a
    patient-like phantom at 1.5 mm whose L5 had no core: L4, 75 mm off at moderate), one that
    finds it lower down is not."""
    from spinect_core.anatomy.levels import _hollow_column_below

    first = LevelEvidence(level_centres_lps=np.array([[0.0, 0.0, z] for z in (-63.0, -91.0,
                                                                             -124.0)]),
                          column_beyond_mm=194.0)
    assert _hollow_column_below(first, np.array([0.0, 0.0, -126.0])) == 194.0
    assert _hollow_column_below(first, np.array([0.0, 0.0, -91.0])) == 194.0
    assert _hollow_column_below(first, np.array([0.0, 0.0, -190.0])) is None
    first.column_beyond_mm = None
    assert _hollow_column_below(first, np.array([0.0, 0.0, -124.0])) is None
    assert _hollow_column_below(None, np.array([0.0, 0.0, -124.0])) is None


def test_lumbar_sized_bodies_below_a_second_counts_sacrum_are_counted():
    """A cut count's sacrum with a body of lumbar size below it in the labels' own count (a
    patient-like phantom at 1.5 mm: L4 taken for the sacrum, with L5 below) is suspect; a
    small S2 core below S1 is not lumbar-sized."""
    from spinect_core.anatomy.levels import _lumbar_sized_below

    centres = np.array([[0.0, 0.0, z] for z in (-63.0, -91.0, -124.0, -159.0)])
    volumes = np.array([3000.0, 9000.0, 9500.0, 11000.0])
    assert _lumbar_sized_below(centres, volumes, np.array([0.0, 0.0, -124.0])) == 1
    assert _lumbar_sized_below(centres, volumes, np.array([0.0, 0.0, -159.0])) == 0
    s2 = np.array([3000.0, 9000.0, 9500.0, 1500.0])                # a small S2 core
    assert _lumbar_sized_below(centres, s2, np.array([0.0, 0.0, -124.0])) == 0


def test_a_sacrum_joined_to_an_ilium_is_cut_from_it_and_found():
    """A coarse scan blurs the sacroiliac joint: the sacrum's core and an ilium's become one
    deep block, centred far to the side (patient-like phantoms at 1.5-3 mm: 5 of 24 refused as
    "the column goes on below L5", 2 planned 38-75 mm off). Cut beside the column, its central part is the sacrum."""
    col = Column(_names(4, 5), ribs=set(THORACIC))
    t = col.sacrum_top
    col.box((-25, 25), (-18, 18), (t - 30, t))
    col.box((10, 82), (-20, 24), (t - 40, t - 2))            # ala and left ilium, one block
    ev = derive_parts(col.volume(), STUDY_LABELS).evidence
    assert ev.sacrum_found and ev.levels[-2:] == ("L5", "S1")
    assert ev.lumbar_count == 5 and ev.confidence == "high"
    s1 = ev.level_centres_lps[-1]
    assert abs(s1[0]) < 15.0                                 # the sacrum's centre, not the block's


def test_a_sacrum_core_taller_than_a_sacrum_lowers_the_confidence():
    """Lumbar bodies merged into the sacrum's core (two patient-like phantoms at 3 mm: cores
    110-111 mm tall, planned 37-38 mm from L5/S1; 58-92 mm on 46 label maps counted right)."""
    col = Column(["L2", "L3", "L4", "L5"], ribs=set(), below_sacrum_top_mm=140.0)
    t = col.sacrum_top
    col.box((-25, 25), (-18, 18), (t - 125, t))             # a solid block 125 mm tall
    ev = _counted(col)
    assert ev.sacrum_found and ev.confidence == "low"
    assert any("taller than a sacrum's" in w for w in ev.warnings)
    ok = _counted(Column(["L2", "L3", "L4", "L5"], ribs=set()))
    assert not any("taller than a sacrum's" in w for w in ok.warnings)


def test_a_shallow_sacrum_with_the_scan_going_on_below_is_not_called_out_of_view():
    """The sacrum's core found but little solid bone below its top, while the field of view
    reaches far below: the refusal blames the bone labels, not the field of view (a real 3 mm
    CT's trial bone, its sacral canal filled, was refused as "the scan ends just below L5")."""
    from spinect_core.anatomy.counting import SacrumCheck

    shallow = SacrumCheck(index=5, ilia=("left", "right"), shaped=True, ratios=(2.0, 3.0, 1.8),
                          depth_mm=15.0, deep_enough=False, fov_depth_mm=140.0)
    assert not shallow.cut_by_fov
    assert "solid in the bone labels" in shallow.missing()
    assert "outside the field of view" not in shallow.missing()
    cut = SacrumCheck(index=5, ilia=("left", "right"), shaped=True, ratios=(2.0, 3.0, 1.8),
                      depth_mm=15.0, deep_enough=False, fov_depth_mm=18.0)
    assert cut.cut_by_fov and "mostly outside the field of view" in cut.missing()


def _column_with_marrow_left_out() -> Column:
    """L3-L5 and the sacrum without ribs, the labels' marrow left out of all but L5 (an
    elderly patient's fatty marrow in a smooth scan): L3 keeps a sliver of it (a 20 mm cube, a
    core of about 640 mm^3), L4 and the sacrum are shells."""
    col = Column(["L3", "L4", "L5"], ribs=set(), hollow={"L3", "L4"})
    middle = col.bottom["L3"] + 0.5 * BODY_H
    col.box((-10, 10), (-10, 10), (middle - 10, middle + 10))
    t = col.sacrum_top
    col.box((-23, 23), (-16, 16), (t - 28, t - 2), value=False)          # S1's marrow
    for k in range(6):                                                   # S2...'s
        w = 22 - 3 * k
        col.box((-w + 2, w - 2), (-12 + 5 * k, 12 + 5 * k),
                (t - 38 - 10 * k, t - 32 - 10 * k), value=False)
    for s in (1, -1):                                                    # the alae's
        col.box(sorted((s * 27, s * 56)), (-6, 22), (t - 28, t - 6), value=False)
    return col


def test_l5_is_not_taken_for_the_sacrum_against_a_sliver_of_marrow_above() -> None:
    """Judged against L3's sliver of a core, L5's core is 17x as large and passed for the
    sacrum: the count named L3 "L5" at "moderate" (TotalSegmentator's real CT resampled to
    1 mm and cropped below L2, its marrow taken for contrast pools). Against slivers the shape
    is no evidence, and the scan is refused with the bodies named as not solid."""
    col = _column_with_marrow_left_out()
    with pytest.raises(AnatomyError, match="not solid in the bone labels"):
        _count_pass(col.volume(), STUDY_LABELS, None, LevelOptions(), None)
    # As before (no bound): a level off.
    old = LevelOptions(counting=CountOptions(shape_reference_min_mm3=0.0))
    counted = _count_pass(col.volume(), STUDY_LABELS, None, old, None)
    assert counted.evidence.levels == ("L5", "S1")
    assert counted.chain[-1].centre[2] == pytest.approx(col.bottom["L5"] + 0.5 * BODY_H, abs=3.0)


def test_a_sacrum_refused_for_slivers_above_says_so() -> None:
    """Refused because its shape was judged against slivers only: the words say the bodies
    above are slivers of bone in the labels, not that it is no wider or larger than they are
    (TotalSegmentator's CT at 1 mm cropped below L2: L5's core was 17x its sliver of L3's)."""
    from spinect_core.anatomy.counting import SacrumCheck

    check = SacrumCheck(index=1, ilia=("left", "right"), shaped=False, ratios=(2.0, 17.0, 1.1),
                        depth_mm=80.0, deep_enough=True, slivers_above=True)
    words = check.missing()
    assert "only slivers of bone in the labels" in words and "not shaped" not in words
    plain = SacrumCheck(index=1, ilia=("left", "right"), shaped=False, ratios=(1.1, 1.2, 1.0),
                        depth_mm=80.0, deep_enough=True)
    assert "not shaped like a sacrum" in plain.missing()
