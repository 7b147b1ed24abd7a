"""The phantom on real bones: Visible Human L4, L5, sacrum and hip bones, varied per seed.

``generate_phantom(seed=..., options=PhantomOptions(anatomy="real"))`` (or ``spinect phantom
--anatomy real``) builds the same :class:`~spinect_core.phantom.Phantom` as the procedural
phantom (CT, labels, instances, tissues, landmarks in LPS) with the bones replaced by real
surfaces:

- :mod:`.meshes`: the shipped meshes (``assets/anatomy_meshes``) and their signed-distance grids;
- :mod:`.measure`: the landmarks measured on them (``landmarks.json``, a one-off script);
- :mod:`.variation`: the per-seed patient variation and its documented ranges;
- :mod:`.bones`: a real bone placed, scaled and deformed, as a distance field;
- :mod:`.anatomy`: the assembly with the procedural soft-tissue builders.
"""

from spinect_core.phantom.real.anatomy import build_real_anatomy
from spinect_core.phantom.real.variation import RealVariation, sample_variation

__all__ = ["RealVariation", "build_real_anatomy", "sample_variation"]
