"""Export triangle surfaces (STL, PLY, OBJ, glTF) with their coordinate system in the file.

Every file states its frame twice: in the name (``<name>_<lps|ras>.<ext>``, see
:func:`mesh_filename`) and inside the file as the token ``SPACE=LPS`` / ``SPACE=RAS`` (glTF:
in ``asset.extras``, which also gives the conversion from LPS).

Why ``SPACE=``: 3D Slicer (4.11 and later, ``vtkMRMLModelStorageNode``) searches the STL header,
the PLY comments and the OBJ leading comment for the substring ``SPACE=RAS`` or ``SPACE=LPS`` and
places the model accordingly; a file without the token is assumed to be LPS (Slicer's default
since 4.11; older Slicer assumed RAS). Slicer writes ``3D Slicer output. SPACE=LPS`` itself.
Exporting in RAS (x and y negated) is for tools that take model coordinates as RAS without
reading the header; for Slicer both choices land in the same place.

Per format:

* ``.stl``: binary; the 80-byte header reads ``SPACE=LPS spinect <name> units=mm`` (never starts
  with ``solid``, which readers take for ASCII STL); float32 vertices and unit facet normals.
* ``.ply``: binary little-endian; header comments ``SPACE=LPS``, ``coordinate_system LPS``,
  ``units mm``, ``name <name>``; float32 x, y, z and (when present) nx, ny, nz per vertex.
* ``.obj``: text; leading comments ``# SPACE=LPS``, ``# coordinate_system: LPS``, ``# units: mm``;
  ``v`` (6 decimals, i.e. 1 nm), ``vn`` when normals exist, faces ``f a//a b//b c//c`` (1-based).
* ``.glb`` / ``.gltf`` (trimesh): in glTF's own convention, so any glTF viewer shows the
  patient upright at true size: **metres**, right-handed, **+Y up** (superior), **+Z forward**
  (anterior: the patient faces +Z, as a glTF asset's front does) and so +X the patient's left
  (glTF's -X is the asset's right). From LPS millimetres: ``(X, Y, Z) = 0.001 * (L, S, -P)``,
  i.e. ``x_gltf = x_lps / 1000``, ``y_gltf = z_lps / 1000``, ``z_gltf = -y_lps / 1000`` (a
  rotation, so winding and normals stay valid; normals are rotated alike). ``asset.extras``
  (and the scene's extras) say so: ``coordinate_system`` ``"glTF"``, ``units`` ``"m"``,
  ``axes``, ``source_coordinate_system`` ``"LPS"`` and ``matrix_from_lps_mm`` (4x4, row-major,
  applied to column vectors). The ``_lps`` / ``_ras`` in the file name only records the frame
  asked for: a glTF file is in glTF's frame either way (:data:`GLTF_FROM_LPS_MM`).

Writes are atomic (:func:`spinect_core.io.atomic.atomic_path`) and never replace an existing
file unless ``overwrite=True``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

from spinect_core.errors import SpinectError
from spinect_core.io.atomic import atomic_path, check_writable

if TYPE_CHECKING:
    from spinect_core.surfaces import Mesh

__all__ = [
    "GLTF_FROM_LPS_MM", "MESH_FORMATS", "MeshExportError", "export_mesh", "export_meshes",
    "lps_mm_to_gltf", "mesh_filename",
]

#: Extensions (lower case, no dot) that :func:`export_mesh` writes.
MESH_FORMATS: tuple[str, ...] = ("stl", "ply", "obj", "glb", "gltf")

#: LPS millimetres -> glTF metres (+X left, +Y superior, +Z anterior); 4x4, column vectors.
GLTF_FROM_LPS_MM = np.array([[0.001, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 0.001, 0.0],
                             [0.0, -0.001, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 1.0]])


def lps_mm_to_gltf(points_lps_mm: np.ndarray) -> np.ndarray:
    """glTF positions (metres, +Y up, +Z forward) of LPS millimetre points ``(..., 3)``."""
    p = np.asarray(points_lps_mm, dtype=np.float64)
    return p @ GLTF_FROM_LPS_MM[:3, :3].T


class MeshExportError(SpinectError):
    """A mesh cannot be exported (unknown format, empty mesh, bad coordinate system)."""


def _check_cs(coordinate_system: str) -> str:
    cs = str(coordinate_system).upper()
    if cs not in ("LPS", "RAS"):
        raise MeshExportError(f"coordinate system must be LPS or RAS, got {coordinate_system!r}")
    return cs


def mesh_filename(name: str, coordinate_system: str = "LPS", ext: str = "stl") -> str:
    """File name ``<name>_<lps|ras>.<ext>`` with ``name`` made safe for any file system.

    Parameters
    ----------
    name : str
        Structure name (e.g. ``"bone"``, ``"root_L5_left"``); characters other than letters,
        digits, ``-`` and ``_`` become ``_``.
    coordinate_system : {"LPS", "RAS"}
    ext : str
        One of :data:`MESH_FORMATS`, with or without the dot.

    Returns
    -------
    str
        E.g. ``mesh_filename("bone", "RAS", ".stl") == "bone_ras.stl"``.
    """
    cs = _check_cs(coordinate_system)
    ext = ext.lower().lstrip(".")
    if ext not in MESH_FORMATS:
        raise MeshExportError(f"unknown mesh format {ext!r}; choose one of {', '.join(MESH_FORMATS)}")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_") or "mesh"
    return f"{safe}_{cs.lower()}.{ext}"


def export_mesh(mesh: "Mesh", path: str | Path, *, coordinate_system: str = "LPS",
                overwrite: bool = False) -> Path:
    """Write one mesh; the format follows the extension of ``path``.

    Parameters
    ----------
    mesh : Mesh
        Surface in LPS or RAS mm (converted to ``coordinate_system`` as needed).
    path : str or Path
        Target file ``*.stl``, ``*.ply``, ``*.obj``, ``*.glb`` or ``*.gltf``
        (use :func:`mesh_filename` for the naming convention).
    coordinate_system : {"LPS", "RAS"}
        Frame of the coordinates in the file; ``"RAS"`` negates x and y of LPS. glTF files are
        always in glTF's frame (metres, +Y up; see the module docstring).
    overwrite : bool
        Replace an existing file; otherwise an existing file raises
        :class:`~spinect_core.io.atomic.FileExistsRefusedError`.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    MeshExportError
        Unknown extension, empty mesh or bad coordinate system.
    FileExistsRefusedError
        ``path`` exists and ``overwrite`` is False.
    """
    cs = _check_cs(coordinate_system)
    target = Path(path)
    ext = target.suffix.lower().lstrip(".")
    if ext not in MESH_FORMATS:
        raise MeshExportError(f"cannot tell the mesh format of {target.name}; use one of "
                              f"{', '.join('.' + f for f in MESH_FORMATS)}")
    if mesh.is_empty:
        raise MeshExportError(f"mesh {mesh.name or '(unnamed)'} is empty; nothing to export")
    # glTF has its own frame, converted from LPS (see the module docstring).
    out = mesh.to_lps() if ext in ("glb", "gltf") else mesh.to_coordinate_system(cs)
    data = _ENCODERS[ext](out, cs)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return target


def export_meshes(meshes: Mapping[str, "Mesh"], out_dir: str | Path, *,
                  formats: Iterable[str] = ("stl",), coordinate_system: str = "LPS",
                  overwrite: bool = False) -> list[Path]:
    """Write every non-empty mesh in every format as ``out_dir/<name>_<lps|ras>.<ext>``.

    All target names are checked before anything is written, so a refused overwrite leaves no
    half-written set behind. Empty meshes (absent structures) are skipped.

    Parameters
    ----------
    meshes : mapping of str to Mesh
        Keys are used as file names (made safe by :func:`mesh_filename`).
    out_dir : str or Path
        Created if missing.
    formats : iterable of str
        Extensions from :data:`MESH_FORMATS` (``"stl"``, ``".ply"``, ...).
    coordinate_system : {"LPS", "RAS"}
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of Path
        Files written, in mesh order then format order.
    """
    cs = _check_cs(coordinate_system)
    fmts = [f.lower().lstrip(".") for f in formats]
    out = Path(out_dir)
    plan: list[tuple["Mesh", Path]] = []
    for key, mesh in meshes.items():
        if mesh.is_empty:
            continue
        for fmt in fmts:
            plan.append((mesh, out / mesh_filename(key, cs, fmt)))
    names = [p for _, p in plan]
    if len(set(names)) != len(names):
        raise MeshExportError("two meshes map to the same file name; rename them")
    for p in names:
        check_writable(p, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    return [export_mesh(mesh, p, coordinate_system=cs, overwrite=overwrite) for mesh, p in plan]


# ------------------------------------------------------------------------------------------------
# Encoders: Mesh (already in the target frame) -> file bytes
# ------------------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return re.sub(r"\s+", "_", str(text)) or "-"


def _face_unit_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    v = verts[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    length[length == 0] = 1.0
    return n / length


def _encode_stl(mesh: "Mesh", cs: str) -> bytes:
    header = f"SPACE={cs} spinect {_one_line(mesh.name)} units=mm".encode("ascii", "replace")
    header = header[:80].ljust(80, b" ")
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    data = np.zeros(len(mesh.faces), dtype=record)
    data["normal"] = _face_unit_normals(mesh.vertices_lps_mm, mesh.faces)
    data["vertices"] = mesh.vertices_lps_mm[mesh.faces]
    return header + np.uint32(len(mesh.faces)).tobytes() + data.tobytes()


def _encode_ply(mesh: "Mesh", cs: str) -> bytes:
    has_n = mesh.normals is not None
    lines = [
        "ply", "format binary_little_endian 1.0",
        f"comment SPACE={cs}",
        f"comment coordinate_system {cs}",
        "comment units mm",
        f"comment name {_one_line(mesh.name)}",
        "comment generator spinect",
        f"element vertex {mesh.n_vertices}",
        "property float x", "property float y", "property float z",
    ]
    if has_n:
        lines += ["property float nx", "property float ny", "property float nz"]
    lines += [f"element face {mesh.n_triangles}", "property list uchar int vertex_indices",
              "end_header"]
    header = ("\n".join(lines) + "\n").encode("ascii", "replace")
    vdt = [("p", "<f4", (3,))] + ([("n", "<f4", (3,))] if has_n else [])
    vdata = np.zeros(mesh.n_vertices, dtype=vdt)
    vdata["p"] = mesh.vertices_lps_mm
    if has_n:
        vdata["n"] = mesh.normals
    fdata = np.zeros(mesh.n_triangles, dtype=[("k", "u1"), ("v", "<i4", (3,))])
    fdata["k"] = 3
    fdata["v"] = mesh.faces
    return header + vdata.tobytes() + fdata.tobytes()


def _encode_obj(mesh: "Mesh", cs: str) -> bytes:
    buf = io.StringIO()
    # Slicer's vtkOBJReader returns the leading comment block; the token must be in it.
    buf.write(f"# SPACE={cs}\n# coordinate_system: {cs}\n# units: mm\n"
              f"# name: {_one_line(mesh.name)}\n# generator: spinect\n")
    buf.write(f"o {_one_line(mesh.name) if mesh.name else 'mesh'}\n")
    np.savetxt(buf, mesh.vertices_lps_mm, fmt="v %.6f %.6f %.6f")
    f1 = mesh.faces + 1
    if mesh.normals is not None:
        np.savetxt(buf, mesh.normals, fmt="vn %.6f %.6f %.6f")
        np.savetxt(buf, np.repeat(f1, 2, axis=1), fmt="f %d//%d %d//%d %d//%d")
    else:
        np.savetxt(buf, f1, fmt="f %d %d %d")
    return buf.getvalue().encode("utf-8")


def _gltf_extras(mesh: "Mesh", cs: str) -> dict:
    return {
        "SPACE": "glTF",
        "coordinate_system": "glTF",
        "units": "m",
        "axes": {"+X": "patient left", "+Y": "superior (up)", "+Z": "anterior (forward)"},
        "source_coordinate_system": "LPS",
        "source_units": "mm",
        "matrix_from_lps_mm": GLTF_FROM_LPS_MM.tolist(),
        "requested_coordinate_system": cs,
        "name": mesh.name,
        "label_name": mesh.label_name,
        "note": ("glTF convention: metres, right-handed, +Y up, +Z forward; converted from "
                 "patient LPS millimetres as (X, Y, Z) = 0.001 * (x_lps, z_lps, -y_lps)"),
        "generator": "spinect",
    }


def _gltf_scene(mesh: "Mesh", cs: str):
    import trimesh

    extras = _gltf_extras(mesh, cs)
    # ``mesh`` is in LPS here (export_mesh); the rotation keeps the winding and turns normals.
    tm = trimesh.Trimesh(vertices=lps_mm_to_gltf(mesh.vertices_lps_mm), faces=mesh.faces,
                         process=False,
                         vertex_normals=None if mesh.normals is None
                         else lps_mm_to_gltf(mesh.normals) * 1000.0,
                         metadata=dict(extras))
    scene = trimesh.Scene()
    scene.add_geometry(tm, geom_name=mesh.name or "mesh", node_name=mesh.name or "mesh")
    scene.metadata.update(extras)

    def _post(tree: dict) -> None:
        tree.setdefault("asset", {})["extras"] = dict(extras)

    return scene, _post


def _encode_glb(mesh: "Mesh", cs: str) -> bytes:
    from trimesh.exchange.gltf import export_glb

    scene, post = _gltf_scene(mesh, cs)
    return export_glb(scene, include_normals=mesh.normals is not None, tree_postprocessor=post)


def _encode_gltf(mesh: "Mesh", cs: str) -> bytes:
    from trimesh.exchange.gltf import export_gltf

    scene, post = _gltf_scene(mesh, cs)
    files = export_gltf(scene, include_normals=mesh.normals is not None, embed_buffers=True,
                        tree_postprocessor=post)
    gltf_names = [k for k in files if k.endswith(".gltf")]
    if len(files) != 1 or len(gltf_names) != 1:  # embedded buffers: one self-contained file
        raise MeshExportError(f"glTF export produced {sorted(files)}; expected one .gltf file")
    # Re-serialise compactly so the file is stable and plain JSON.
    return json.dumps(json.loads(files[gltf_names[0]]), separators=(",", ":")).encode("utf-8")


_ENCODERS = {
    "stl": _encode_stl,
    "ply": _encode_ply,
    "obj": _encode_obj,
    "glb": _encode_glb,
    "gltf": _encode_gltf,
}
