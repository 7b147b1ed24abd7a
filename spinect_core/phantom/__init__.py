"""Synthetic lumbosacral CT phantoms with exact labels and analytic landmarks.

``generate_phantom(seed=..., spacing_mm=...)`` builds L4, L5, S1/sacrum, ilia, discs, dural sac and
the L4, L5 and S1 roots as signed-distance parts (``anatomy``), rasterises them with partial volume
and scanner effects (``render``) and ``write_phantom`` saves CT, labels, instances and metadata.

``generate_phantom(seed=..., options=PhantomOptions(realism="patient"))`` puts the same spine in a
randomised patient for training (``patient``: the draws and their ranges, ``torso``: thorax to
femoral heads, organs, contrast, bowel, table, arms, metal; ``acquisition``: kernels, slice
thickness, noise, streaks). It needs only numpy and scipy.

``generate_phantom(seed=..., options=PhantomOptions(anatomy="real"))`` builds the bones from real
surfaces instead (Visible Human L4, L5, sacrum and hip bones, varied per seed; the soft tissue,
discs, sac and roots placed from them by the same builders): :mod:`spinect_core.phantom.real`
(needs trimesh and vtk, and caches the bones' distance grids on disk).
"""

from spinect_core.phantom.generate import (
    INSTANCE_LABELS, PATIENT_INSTANCE_LABELS, TISSUE_LABELS, Phantom, generate_phantom,
)
from spinect_core.phantom.params import PhantomOptions, PhantomParams, sample_params

__all__ = ["INSTANCE_LABELS", "PATIENT_INSTANCE_LABELS", "TISSUE_LABELS", "Phantom",
           "PhantomOptions", "PhantomParams", "generate_phantom", "sample_params",
           "write_phantom"]


def __getattr__(name: str):
    # write_phantom pulls in SimpleITK and the io package; import it only when asked for.
    if name == "write_phantom":
        from spinect_core.phantom.write import write_phantom
        return write_phantom
    raise AttributeError(name)
