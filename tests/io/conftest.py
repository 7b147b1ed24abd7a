"""Fixtures of the loader tests.

The geometry tests of the loader (written before the size check) use micro volumes, e.g. 12
slices of 6 x 7 pixels, that are far below the loader's "too small" limits
(:class:`~spinect_core.io.options.LoadOptions` ``min_voxels_per_axis`` / ``min_extent_mm``). For
those modules the limits are switched off by default here; the modules listed in
:data:`SIZE_CHECKED` (the integrity tests) keep the real defaults.
"""

from __future__ import annotations

import pytest

#: Test modules that load with the real size limits.
SIZE_CHECKED = {"tests.io.test_integrity", "tests.io.test_dicom_inputs"}


@pytest.fixture(autouse=True)
def micro_volumes_allowed(request, monkeypatch):
    if request.module.__name__ in SIZE_CHECKED:
        yield
        return
    from spinect_core.io.options import LoadOptions

    defaults = dict(LoadOptions.__init__.__kwdefaults__)
    defaults.update(min_voxels_per_axis=0, min_extent_mm=0.0)
    monkeypatch.setattr(LoadOptions.__init__, "__kwdefaults__", defaults)
    yield
