"""The parts' watershed follows the distance map's necks on fine grids and floods through the
bone in voxel steps on coarse ones (``LevelOptions.geodesic_above_mm``), where the facet joints
are not seen and the narrowest necks are L5's pedicles."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import levels
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom


@pytest.mark.parametrize("spacing_mm, flat", [(1.5, False), (3.0, True)])
def test_the_flood_is_in_steps_only_on_coarse_grids(monkeypatch, spacing_mm, flat) -> None:
    import skimage.segmentation

    seen = []
    real = skimage.segmentation.watershed

    def watershed(image, markers, **kwargs):
        if markers.dtype == np.uint8:                      # the parts' flood
            seen.append(np.asarray(image))
        return real(image, markers, **kwargs)

    monkeypatch.setattr(skimage.segmentation, "watershed", watershed)
    ph = generate_phantom(seed=0, spacing_mm=(spacing_mm,) * 3)
    levels.derive_parts(ph.labels, DEFAULT_LABELS, ct=ph.ct)
    assert seen
    image = seen[-1]
    assert bool(np.all(image == 0.0)) == flat
    if not flat:
        assert image.min() < -5.0                           # the distance map's depth
