"""Warnings for transitional anatomy, made by editing the phantom's labels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import ndimage as ndi

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.anatomy.parts import PART_ID

from .conftest import identified


def _sacralised(warnings):
    return [w for w in warnings if "sacralised L5" in w]


def test_thin_disc_warns_sacralisation(phantom):
    it = phantom.instance_table
    disc = phantom.instances.array == it.id_of("disc_L5S1")
    s1 = phantom.instances.array == it.id_of("S1")
    keep = disc & ndi.binary_dilation(s1)          # a ~1.5 mm layer on the S1 endplate
    lab = phantom.labels.array.copy()
    lab[disc & ~keep] = phantom.label_table.id_of("bone")
    ins = phantom.instances.array.copy()
    ins[disc & ~keep] = it.id_of("L5")
    res = identify_lumbosacral(phantom.labels.with_array(lab), phantom.label_table,
                               instances=phantom.instances.with_array(ins), instance_table=it)
    assert any("very thin" in w for w in _sacralised(res.warnings))


def test_disc_replaced_by_bone_warns_sacralisation(phantom):
    """Only class labels: L5 fused to the sacrum. The lowest mobile disc is then L4/L5, and the
    sacroiliac joints lie far below it."""
    disc = phantom.instances.array == phantom.instance_table.id_of("disc_L5S1")
    lab = phantom.labels.array.copy()
    lab[disc] = phantom.label_table.id_of("bone")
    res = identify_lumbosacral(phantom.labels.with_array(lab), phantom.label_table)
    assert any("sacroiliac" in w for w in _sacralised(res.warnings))


def _four_lumbar_by_the_ribs(evidence):
    """The level evidence as a rib count of four lumbar vertebrae would leave it."""
    ev = copy.deepcopy(evidence)
    ev.lumbar_count, ev.rib_count_agrees = 4, False
    return ev


def test_l5_fused_to_the_sacrum_with_four_lumbar_by_the_ribs_is_refused(phantom):
    """The sacroiliac joints a vertebra below the disc above the sacrum, and the ribs counting
    four lumbar vertebrae: both say the body on top of the "sacrum" is L5 (TotalSegmentator's
    real CT 0.75 mm off its grid: planned 36 mm from L5/S1 at "moderate"). Refused with the
    evidence; either sign alone is a transitional vertebra's and is planned."""
    from spinect_core.anatomy.checks import (SI_JOINT_DEPTH_MM, refuse_l5_fused_to_the_sacrum,
                                             sacroiliac_joint_depth_mm)
    from spinect_core.errors import AnatomyError

    disc = phantom.instances.array == phantom.instance_table.id_of("disc_L5S1")
    lab = phantom.labels.array.copy()
    lab[disc] = phantom.label_table.id_of("bone")
    fused = identify_lumbosacral(phantom.labels.with_array(lab), phantom.label_table)
    depth = sacroiliac_joint_depth_mm(fused.parts, np.asarray(fused.parts.array), fused)
    assert depth > SI_JOINT_DEPTH_MM
    ev = _four_lumbar_by_the_ribs(fused.level_evidence)
    with pytest.raises(AnatomyError, match="levels cannot be counted: 4 lumbar vertebrae.*"
                       "sacroiliac joints begin [0-9]+ mm below") as err:
        refuse_l5_fused_to_the_sacrum(ev, depth)
    assert err.value.evidence is ev and ev.chain_faults
    # The joints alone (no rib count against the sacrum's): a warning, as before.
    refuse_l5_fused_to_the_sacrum(copy.deepcopy(fused.level_evidence), depth)
    # Four lumbar by the ribs with the joints beside S1: a transitional count, planned.
    whole = identified(phantom, "labels")
    whole_depth = sacroiliac_joint_depth_mm(whole.parts, np.asarray(whole.parts.array), whole)
    assert whole_depth < SI_JOINT_DEPTH_MM
    refuse_l5_fused_to_the_sacrum(_four_lumbar_by_the_ribs(whole.level_evidence), whole_depth)


def test_gap_in_the_sacrum_warns_lumbarisation(phantom):
    res0 = identified(phantom, "instances")
    assert not [w for w in res0.warnings if "lumbarised" in w]
    # Cut a 5 mm disc-like slab through the sacrum 22-27 mm below the S1 endplate.
    s1 = res0.parts.array == PART_ID["S1"]
    zz, yy, xx = np.nonzero(s1)
    p = phantom.labels.index_to_lps(np.stack([xx, yy, zz], -1))
    h = (p - res0.s1_endplate_centre_lps) @ res0.s1_endplate_normal_lps
    cut = (h < -22.0) & (h > -27.0)
    lab = phantom.labels.array.copy()
    ins = phantom.instances.array.copy()
    lab[zz[cut], yy[cut], xx[cut]] = 0
    ins[zz[cut], yy[cut], xx[cut]] = 0
    res = identify_lumbosacral(phantom.labels.with_array(lab), phantom.label_table,
                               instances=phantom.instances.with_array(ins),
                               instance_table=phantom.instance_table)
    assert any("lumbarised S1" in w for w in res.warnings)
