"""Real bones placed, scaled and deformed in the patient frame, as signed-distance fields.

A :class:`PlacedBone` maps a patient-frame point to the bone's native mesh frame and samples the
bone's precomputed distance grid (:func:`~spinect_core.phantom.real.meshes.bone_sdf`), so moving,
scaling or warping a bone costs only the coordinate arithmetic:

``patient --frame--> bone-local (scaled) --warp--> / scale --> real-local --native--> mesh frame
--native_map--> undeformed mesh frame --> grid``

- ``frame`` places the bone in the patient (a vertebra: its body frame, chained from the sacrum
  by the procedural phantom's ``build_anatomy``; the hip bones ride on the sacrum's frame);
- the warp (:class:`~spinect_core.phantom.real.variation.Warp`) and the per-axis scale are
  applied in the bone's own frame;
- ``native`` is the measured body frame of the real bone in the meshes' frame
  (``landmarks.json``);
- ``native_map`` undoes a deformation defined in the mesh frame (the hip bones' rotation about
  the sacroiliac axis and the iliac-wing stretch);
- ``bumps`` dilate the bone locally (facet hypertrophy, osteophytes): ``d - h exp(-r^2 / 2 s^2)``.

Distances are scaled by the geometric mean of the scale factors (exact for a uniform scale) and
the warp and bumps keep them approximately metric (displacements of a few mm over tens of mm),
which is all the renderer needs (it measures each voxel's extent along the gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from spinect_core.phantom import shapes as S
from spinect_core.phantom.real.meshes import bone_sdf, bone_vertices
from spinect_core.phantom.real.variation import Warp

NativeMap = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple]


@dataclass(frozen=True)
class Bump:
    """A local dilation: centre (real-local mm), height (mm), radius (Gaussian SD, mm)."""

    centre: np.ndarray
    height_mm: float
    radius_mm: float


@dataclass
class PlacedBone:
    """One real bone in the patient frame (see the module docstring).

    Attributes
    ----------
    name : str
        Bone of :data:`~spinect_core.phantom.real.meshes.BONES` (its distance grid).
    frame : Frame
        Patient <- bone-local (scaled) frame.
    native : Frame
        Mesh (native LPS) <- real-local frame of the bone (unscaled).
    scale : ndarray (3,)
        Bone-local x, y, z scale factors.
    warp : Warp or None
    native_map : callable or None
        ``(x, y, z) -> (x, y, z)`` in the mesh frame: the inverse of a deformation.
    bumps : list of Bump
    native_forward : callable or None
        ``points (N, 3) -> points``: the deformation itself (for the bounding box).
    """

    name: str
    frame: S.Frame
    native: S.Frame
    scale: np.ndarray
    warp: Warp | None = None
    native_map: NativeMap | None = None
    bumps: list[Bump] = field(default_factory=list)
    native_forward: Callable | None = None

    def real_local(self, x, y, z):
        """Real-local (unscaled, unwarped) coordinates of patient points (three arrays)."""
        lx, ly, lz = self.frame.to_local(x, y, z)
        if self.warp is not None:
            lx, ly, lz = self.warp.displace(lx, ly, lz)
        return lx / self.scale[0], ly / self.scale[1], lz / self.scale[2]

    def distance(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm, negative inside) at patient-frame points (three arrays)."""
        rx, ry, rz = self.real_local(x, y, z)
        R, t = self.native.R, self.native.t
        nx = R[0, 0] * rx + R[0, 1] * ry + R[0, 2] * rz + t[0]
        ny = R[1, 0] * rx + R[1, 1] * ry + R[1, 2] * rz + t[1]
        nz = R[2, 0] * rx + R[2, 1] * ry + R[2, 2] * rz + t[2]
        if self.native_map is not None:
            nx, ny, nz = self.native_map(nx, ny, nz)
        d = bone_sdf(self.name).sample(nx, ny, nz) * float(np.prod(self.scale) ** (1.0 / 3.0))
        for b in self.bumps:
            r2 = (rx - b.centre[0]) ** 2 + (ry - b.centre[1]) ** 2 + (rz - b.centre[2]) ** 2
            d = d - b.height_mm * np.exp(-0.5 * r2 / b.radius_mm ** 2)
        return d

    def point(self, real_local_xyz: Any) -> np.ndarray:
        """Patient position of a real-local point (scaled; the warp's few mm are ignored)."""
        return self.frame.point(np.asarray(real_local_xyz, float) * self.scale)

    def vertices(self) -> np.ndarray:
        """The bone's mesh vertices (n, 3) in the patient frame, deformed and scaled (not warped)."""
        v = bone_vertices(self.name)
        if self.native_forward is not None:
            v = self.native_forward(v)
        loc = (v - self.native.t) @ self.native.R   # real-local
        return (loc * self.scale) @ self.frame.R.T + self.frame.t

    def surface_distance(self, point: Any) -> float:
        """Distance (mm) from a patient point to the nearest mesh vertex (vertices are 1-3 mm
        apart): a quick gap measure that needs no distance grid."""
        from scipy.spatial import cKDTree

        return float(cKDTree(self.vertices()).query(np.asarray(point, float))[0])

    def bbox(self, margin_mm: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
        """Conservative patient-frame box of the bone (its mesh vertices, deformed, + margin)."""
        P = self.vertices()
        grow = margin_mm + sum(b.height_mm for b in self.bumps) + (
            float(np.sum(self.warp.amplitudes)) if self.warp is not None else 0.0)
        return P.min(axis=0) - grow, P.max(axis=0) + grow


def bone_fields(bone: PlacedBone, cortex_mm: float) -> Callable:
    """Field function of a bone part: ``"outer"`` (periosteal surface, first: the cached key
    that carving uses) and ``"inner"`` (endosteal surface ``cortex_mm`` inside)."""
    def fields(x, y, z):
        d = bone.distance(x, y, z)
        return {"outer": d, "inner": d + cortex_mm}
    return fields


def rotation_about_axis(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation matrix (3, 3) about a unit ``axis`` by ``angle_deg`` (right hand)."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class HipDeformation:
    """The hip bone's pelvic-incidence rotation and iliac-wing stretch (mesh frame, mm).

    Forward: rotate by ``angle_deg`` about the axis through the two sacroiliac joint centres
    (``si_left``, ``si_right``), then raise points by ``raise_mm * smoothstep((z - z0) / (z1 -
    z0))`` along the mesh's superior axis (zero below ``z0``, the top of the joint, full at the
    crest height ``z1``). :meth:`inverse` is what the distance sampling applies (the stretch's
    inverse to first order: its slope is below 0.25).
    """

    si_left: np.ndarray
    si_right: np.ndarray
    angle_deg: float
    raise_mm: float
    z0: float
    z1: float

    def _rot(self, sign: float) -> np.ndarray:
        return rotation_about_axis(self.si_left - self.si_right, sign * self.angle_deg)

    def forward(self, p: Any) -> np.ndarray:
        p = np.asarray(p, float)
        c = 0.5 * (self.si_left + self.si_right)
        q = (p - c) @ self._rot(1.0).T + c
        q = q.copy()
        q[..., 2] += self.raise_mm * smoothstep((q[..., 2] - self.z0) / (self.z1 - self.z0))
        return q

    def inverse(self, x, y, z):
        z = z - self.raise_mm * smoothstep((z - self.z0) / (self.z1 - self.z0))
        c = 0.5 * (self.si_left + self.si_right)
        R = self._rot(-1.0)
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        return (R[0, 0] * dx + R[0, 1] * dy + R[0, 2] * dz + c[0],
                R[1, 0] * dx + R[1, 1] * dy + R[1, 2] * dz + c[1],
                R[2, 0] * dx + R[2, 1] * dy + R[2, 2] * dz + c[2])
