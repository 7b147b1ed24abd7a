"""Warnings for transitional anatomy, made by editing the phantom's labels."""

from __future__ import annotations

import numpy as np
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
