"""Per-seed patient variation of the real-bone phantom: what changes from one seed to the next.

The bones are one man's (the Visible Human male: a large adult, his L5 body 54 mm wide, at the
top of the 45-55 mm range of ``docs/ANATOMY.md``). A seed varies them as patients vary; each
draw is uniform over its range (the whole range, as the procedural phantom does), from the
random stream ``SeedSequence([seed, REAL_STREAM])`` so that the procedural parameters of the same
seed (:func:`~spinect_core.phantom.params.sample_params`: sacral slope, disc heights, soft
tissue, HU, pose, scanner) keep their values.

What varies where (ranges and sources)
--------------------------------------
- **Overall size**: ``size_scale`` 0.88-1.00 times the Visible Human bones (he is at the top of
  the adult ranges, so the draws only shrink him), and per-axis factors ``aspect`` 0.97-1.03
  in each bone's own frame: the L5 body spans 45-56 mm wide, 31-38 deep and 23-28.5 high
  (ANATOMY.md: 45-55, 33-38, 24-30; the Visible Human's L5 is relatively deep and low), its
  pedicles 12-15 mm wide and 13-16.5 high (12-18, 13-16).
- **Sacral slope** 35-45 deg and **disc heights** (anterior 10-14 mm, posterior 5-8 mm at L5/S1,
  6-9 mm at L4/L5): the procedural parameters. The segmental lordosis is the disc wedge plus the
  real body wedge (L5: 12 deg measured), so L5/S1 spans about 16-22 deg (ANATOMY.md 10-20; the
  Visible Human's wedged L5 puts it at the top).
- **Degenerate discs**: each disc is degenerate with probability ``DEGENERATE_PROBABILITY``
  (0.25; disc degeneration at L5/S1 is common in the injection population): its posterior
  height falls to 2.5-4.5 mm and its anterior height to 6-10 mm (Hasegawa 1995: posterior disc
  height <= 4 mm often compresses the root).
- **Pelvic incidence**: the hip bones turn about the axis through the two sacroiliac joint
  centres by ``pelvic_incidence_delta_deg`` -6..+6 deg (pelvic incidence 40-65 deg in adults,
  SD about 10 deg; the rotation changes it by about the same angle).
- **Iliac crest height**: the iliac wing above the sacroiliac joint is stretched upwards by
  ``crest_raise_mm`` -8..+12 mm at the crest (smoothly, zero at the joint): ANATOMY.md "crest top
  at L4/L5, sometimes higher", the main obstacle of oblique views at L5/S1.
- **Facet (SAP) hypertrophy**: the S1 and L5 superior articular processes grow by
  ``sap_hypertrophy_mm`` 0-3 mm per side (a smooth local dilation of radius ~6 mm around the
  process), narrowing the foramen from behind as facet arthropathy does.
- **Osteophytes**: 0-3 ``osteophytes`` per L5/S1 endplate rim (posterolateral and lateral,
  where they narrow the foramen), each a smooth bump of 1-3 mm height and 3 mm radius.
- **Smooth non-rigid deformation**: per bone, three random sinusoidal displacement modes of
  0-1.2 mm amplitude and 50-120 mm wavelength (``warp``), so no two seeds share exactly the same
  bone surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Stream id of the real-anatomy draws (``SeedSequence([seed, REAL_STREAM])``).
REAL_STREAM = 12
#: Probability that a disc is degenerate.
DEGENERATE_PROBABILITY = 0.25

#: ``name -> (low, high)`` of every uniform draw (units in the names).
RANGES: dict[str, tuple[float, float]] = {
    "size_scale": (0.88, 1.00),
    "aspect": (0.97, 1.03),
    "pelvic_incidence_delta_deg": (-6.0, 6.0),
    "crest_raise_mm": (-8.0, 12.0),
    "sap_hypertrophy_mm": (0.0, 3.0),
    "osteophyte_height_mm": (1.0, 3.0),
    "osteophyte_angle_deg": (35.0, 95.0),      # from the posterior direction, each side
    "degenerate_disc_posterior_mm": (2.5, 4.5),
    "degenerate_disc_anterior_mm": (6.0, 10.0),
    "warp_amplitude_mm": (0.0, 1.2),
    "warp_wavelength_mm": (50.0, 120.0),
}
#: Bones that get their own smooth warp.
WARPED = ("L4", "L5", "sacrum", "hip_left", "hip_right")


@dataclass(frozen=True, kw_only=True)
class Warp:
    """Smooth displacement ``u(p) = sum_k a_k d_k sin(w_k . p + phi_k)`` (mm, bone-local).

    Attributes
    ----------
    amplitudes : ndarray (K,)
        mm.
    directions : ndarray (K, 3)
        Unit displacement directions.
    wavevectors : ndarray (K, 3)
        rad/mm.
    phases : ndarray (K,)
    """

    amplitudes: np.ndarray
    directions: np.ndarray
    wavevectors: np.ndarray
    phases: np.ndarray

    def displace(self, x: np.ndarray, y: np.ndarray,
                 z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Displaced coordinates ``p + u(p)`` for three coordinate arrays."""
        ox, oy, oz = x.copy(), y.copy(), z.copy()
        for a, d, w, ph in zip(self.amplitudes, self.directions, self.wavevectors, self.phases):
            s = a * np.sin(w[0] * x + w[1] * y + w[2] * z + ph)
            ox += d[0] * s
            oy += d[1] * s
            oz += d[2] * s
        return ox, oy, oz

    def to_dict(self) -> dict:
        return {"amplitudes_mm": self.amplitudes.tolist(), "directions": self.directions.tolist(),
                "wavevectors_rad_per_mm": self.wavevectors.tolist(), "phases": self.phases.tolist()}


@dataclass(frozen=True, kw_only=True)
class Osteophyte:
    """A bump on an endplate rim: ``level`` ("L5" inferior or "S1" superior), side 0 left /
    1 right, angle from posterior (deg), height (mm)."""

    level: str
    side: int
    angle_deg: float
    height_mm: float


@dataclass(frozen=True, kw_only=True)
class RealVariation:
    """The per-seed draws of the real-bone phantom (see the module docstring for ranges).

    Attributes
    ----------
    size_scale : float
    aspect : tuple of 3 floats
        x, y, z factors in each bone's frame.
    degenerate_discs : dict
        ``{"L5S1": bool, "L4L5": bool}``.
    disc_heights_mm : dict
        ``{"L5S1": (anterior, posterior), "L4L5": (...)}`` for degenerate discs only.
    pelvic_incidence_delta_deg, crest_raise_mm : float
    sap_hypertrophy_mm : tuple (left, right)
    osteophytes : tuple of Osteophyte
    warps : dict bone -> Warp
    """

    size_scale: float
    aspect: tuple[float, float, float]
    degenerate_discs: dict[str, bool]
    disc_heights_mm: dict[str, tuple[float, float]]
    pelvic_incidence_delta_deg: float
    crest_raise_mm: float
    sap_hypertrophy_mm: tuple[float, float]
    osteophytes: tuple[Osteophyte, ...]
    warps: dict[str, Warp] = field(default_factory=dict)

    @property
    def scale_xyz(self) -> np.ndarray:
        return self.size_scale * np.asarray(self.aspect, float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_scale": self.size_scale, "aspect_xyz": list(self.aspect),
            "degenerate_discs": dict(self.degenerate_discs),
            "degenerate_disc_heights_mm": {k: list(v) for k, v in self.disc_heights_mm.items()},
            "pelvic_incidence_delta_deg": self.pelvic_incidence_delta_deg,
            "crest_raise_mm": self.crest_raise_mm,
            "sap_hypertrophy_mm": list(self.sap_hypertrophy_mm),
            "osteophytes": [{"level": o.level, "side": ("left", "right")[o.side],
                             "angle_deg": o.angle_deg, "height_mm": o.height_mm}
                            for o in self.osteophytes],
            "warps": {k: w.to_dict() for k, w in self.warps.items()},
        }


def sample_variation(seed: int) -> RealVariation:
    """Draw the real-bone variation of ``seed`` (fixed order: reproducible on every platform)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), REAL_STREAM])))

    def u(name: str, size: int | None = None) -> Any:
        lo, hi = RANGES[name]
        return rng.uniform(lo, hi, size=size)

    size = float(u("size_scale"))
    ax, ay, az = (float(a) for a in u("aspect", 3))
    aspect = (ax, ay, az)
    degenerate, heights = {}, {}
    for disc in ("L5S1", "L4L5"):
        degenerate[disc] = bool(rng.uniform() < DEGENERATE_PROBABILITY)
        ant = float(u("degenerate_disc_anterior_mm"))
        post = float(u("degenerate_disc_posterior_mm"))
        if degenerate[disc]:
            heights[disc] = (ant, post)
    pi = float(u("pelvic_incidence_delta_deg"))
    crest = float(u("crest_raise_mm"))
    sap = (float(u("sap_hypertrophy_mm")), float(u("sap_hypertrophy_mm")))
    osteo = []
    for level in ("L5", "S1"):
        n = int(rng.integers(0, 4))
        for _ in range(n):
            osteo.append(Osteophyte(level=level, side=int(rng.integers(0, 2)),
                                    angle_deg=float(u("osteophyte_angle_deg")),
                                    height_mm=float(u("osteophyte_height_mm"))))
    warps = {}
    for bone in WARPED:
        k = 3
        dirs = rng.standard_normal((k, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        wdir = rng.standard_normal((k, 3))
        wdir /= np.linalg.norm(wdir, axis=1, keepdims=True)
        lam = u("warp_wavelength_mm", k)
        warps[bone] = Warp(amplitudes=u("warp_amplitude_mm", k), directions=dirs,
                           wavevectors=wdir * (2 * np.pi / lam)[:, None],
                           phases=rng.uniform(0, 2 * np.pi, k))
    return RealVariation(size_scale=size, aspect=aspect, degenerate_discs=degenerate,
                         disc_heights_mm=heights, pelvic_incidence_delta_deg=pi,
                         crest_raise_mm=crest, sap_hypertrophy_mm=sap,
                         osteophytes=tuple(osteo), warps=warps)
