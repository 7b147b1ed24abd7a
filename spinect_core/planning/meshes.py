"""Moved to :mod:`spinect_core.surfaces` (its users are io, report and the app, not planning).

This re-export keeps ``spinect_core.planning.meshes`` importable for code not yet updated; new
code imports :mod:`spinect_core.surfaces`.
"""

from __future__ import annotations

from spinect_core.surfaces import (
    Mesh,
    MeshOptions,
    Smoothing,
    median_kernel_voxels,
    mesh_from_mask,
    mesh_from_probability,
    meshes_from_labels,
)

__all__ = [
    "Mesh", "MeshOptions", "Smoothing", "mesh_from_mask", "mesh_from_probability",
    "meshes_from_labels", "median_kernel_voxels",
]
