"""Mesh export: round trips through trimesh, the coordinate-system tag, RAS, naming, overwrite."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.io.mesh_export import (
    MESH_FORMATS,
    MeshExportError,
    export_mesh,
    export_meshes,
    lps_mm_to_gltf,
    mesh_filename,
)
from spinect_core.surfaces import Mesh, MeshOptions, mesh_from_mask
from spinect_core.preprocess.resample import Grid

FLIP = np.array([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def ball() -> Mesh:
    """A ball away from the origin (so negating x and y is visible), outward normals."""
    n = 24
    grid = Grid(shape_zyx=(n, n, n), spacing_mm=(1.0, 1.0, 1.0), origin_lps_mm=(-60.0, 20.0, 100.0))
    z, y, x = np.mgrid[:n, :n, :n]
    mask = (x - 12) ** 2 + (y - 11) ** 2 + (z - 12) ** 2 <= 64
    mesh = mesh_from_mask(mask, grid, options=MeshOptions(target_triangles=1500), name="ball")
    assert mesh.is_watertight and mesh.volume_mm3 > 0
    return mesh


def load(path: Path) -> trimesh.Trimesh:
    return trimesh.load(path, process=False, force="mesh")


def expected_vertices(mesh: Mesh, fmt: str, cs: str) -> np.ndarray:
    if fmt in ("glb", "gltf"):  # glTF's own frame whatever was asked: metres, +Y up
        return lps_mm_to_gltf(mesh.vertices_lps_mm)
    v = mesh.vertices_lps_mm * (FLIP if cs == "RAS" else 1.0)
    # STL stores a triangle soup: three vertices per facet, in face order.
    return v[mesh.faces].reshape(-1, 3) if fmt == "stl" else v


def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20:20 + length])


def space_tag(path: Path) -> str:
    """The coordinate-system tag where each format keeps it."""
    fmt = path.suffix.lstrip(".")
    if fmt == "glb":
        return glb_json(path)["asset"]["extras"]["SPACE"]
    if fmt == "gltf":
        return json.loads(path.read_text())["asset"]["extras"]["SPACE"]
    head = path.read_bytes()[:80] if fmt == "stl" else path.read_bytes()[:400]
    for cs in ("LPS", "RAS"):
        if f"SPACE={cs}".encode() in head:
            return cs
    return ""


@pytest.mark.parametrize("fmt", MESH_FORMATS)
@pytest.mark.parametrize("cs", ["LPS", "RAS"])
def test_round_trip_through_trimesh(ball: Mesh, tmp_path: Path, fmt: str, cs: str) -> None:
    path = export_mesh(ball, tmp_path / mesh_filename("ball", cs, fmt), coordinate_system=cs)
    assert path.name == f"ball_{cs.lower()}.{fmt}"
    loaded = load(path)
    want = expected_vertices(ball, fmt, cs)
    assert loaded.vertices.shape == want.shape
    # float32 in every binary format; OBJ keeps 6 decimals (1 nm).
    np.testing.assert_allclose(loaded.vertices, want, atol=2e-5 if fmt not in ("glb", "gltf")
                               else 2e-8, rtol=0)
    if fmt != "stl":
        np.testing.assert_array_equal(loaded.faces, ball.faces)
    assert space_tag(path) == ("glTF" if fmt in ("glb", "gltf") else cs)
    # Winding survives the file: outward normals give a positive volume.
    welded = trimesh.Trimesh(loaded.vertices, loaded.faces)  # merges the STL soup
    assert welded.is_watertight
    scale = 1e-9 if fmt in ("glb", "gltf") else 1.0  # glTF: cubic metres
    assert welded.volume == pytest.approx(ball.volume_mm3 * scale, rel=1e-4)


def test_ras_export_negates_x_and_y(ball: Mesh, tmp_path: Path) -> None:
    lps = load(export_mesh(ball, tmp_path / "b_lps.ply"))
    ras = load(export_mesh(ball, tmp_path / "b_ras.ply", coordinate_system="RAS"))
    np.testing.assert_allclose(ras.vertices, lps.vertices * FLIP, atol=1e-6)
    assert np.abs(lps.vertices[:, :2]).min() > 1.0  # the flip is not hidden by zeros
    # A mesh already in RAS is written unchanged when RAS is asked for.
    again = load(export_mesh(ball.to_ras(), tmp_path / "c_ras.ply", coordinate_system="RAS"))
    np.testing.assert_array_equal(again.vertices, ras.vertices)


def test_ply_keeps_normals_and_metadata(ball: Mesh, tmp_path: Path) -> None:
    path = export_mesh(ball, tmp_path / "ball_lps.ply")
    header = path.read_bytes().split(b"end_header")[0].decode()
    for line in ("comment SPACE=LPS", "comment coordinate_system LPS", "comment units mm",
                 "property float nx"):
        assert line in header
    # trimesh recomputes normals on load, so read the vertex records directly.
    body = path.read_bytes().split(b"end_header\n", 1)[1]
    records = np.frombuffer(body[:24 * ball.n_vertices], dtype="<f4").reshape(-1, 6)
    np.testing.assert_allclose(records[:, :3], ball.vertices_lps_mm, atol=2e-5)
    np.testing.assert_allclose(records[:, 3:], ball.normals, atol=1e-7)


def test_obj_and_stl_headers(ball: Mesh, tmp_path: Path) -> None:
    obj = export_mesh(ball, tmp_path / "ball_lps.obj").read_text().splitlines()
    assert obj[0] == "# SPACE=LPS" and "# coordinate_system: LPS" in obj[:5]
    stl = export_mesh(ball, tmp_path / "ball_ras.stl", coordinate_system="RAS").read_bytes()
    assert stl[:9] == b"SPACE=RAS" and not stl.startswith(b"solid")
    assert len(stl) == 84 + 50 * ball.n_triangles  # binary STL


def test_gltf_extras_say_metres_and_frame(ball: Mesh, tmp_path: Path) -> None:
    extras = glb_json(export_mesh(ball, tmp_path / "ball_lps.glb"))["asset"]["extras"]
    assert extras["coordinate_system"] == "glTF" and extras["units"] == "m"
    assert extras["source_coordinate_system"] == "LPS" and extras["source_units"] == "mm"
    assert extras["axes"]["+Y"].startswith("superior")
    scene = trimesh.load(tmp_path / "ball_lps.glb")
    assert scene.metadata["coordinate_system"] == "glTF"
    # The stated matrix maps LPS mm onto the file's positions.
    m = np.array(extras["matrix_from_lps_mm"])
    loaded = load(tmp_path / "ball_lps.glb")
    np.testing.assert_allclose(loaded.vertices, ball.vertices_lps_mm @ m[:3, :3].T + m[:3, 3],
                               atol=2e-8)


@pytest.mark.parametrize("cs", ["LPS", "RAS"])
def test_gltf_is_metres_with_y_up_on_known_points(tmp_path: Path, cs: str) -> None:
    """A tetrahedron with known LPS corners: in glTF, superior is +Y, anterior +Z, the
    patient's left +X, in metres; the winding stays outward (a rotation, no mirror)."""
    verts = np.array([[10.0, 20.0, 30.0], [110.0, 20.0, 30.0], [10.0, -30.0, 30.0],
                      [10.0, 20.0, 230.0]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    tet = Mesh(vertices_lps_mm=verts, faces=faces, name="tet").to_coordinate_system(cs)
    loaded = load(export_mesh(tet, tmp_path / f"tet_{cs.lower()}.glb"))
    v = loaded.vertices
    np.testing.assert_allclose(v[0], [0.010, 0.030, -0.020], atol=1e-7)
    np.testing.assert_allclose(v[1] - v[0], [0.1, 0.0, 0.0], atol=1e-7)   # 100 mm left: +X
    np.testing.assert_allclose(v[2] - v[0], [0.0, 0.0, 0.05], atol=1e-7)  # 50 mm anterior: +Z
    np.testing.assert_allclose(v[3] - v[0], [0.0, 0.2, 0.0], atol=1e-7)   # 200 mm superior: +Y
    lps_volume = Mesh(vertices_lps_mm=verts, faces=faces).volume_mm3
    assert np.sign(loaded.volume) == np.sign(lps_volume)
    assert loaded.volume == pytest.approx(lps_volume * 1e-9, rel=1e-5)


def test_slicer_readers_find_the_space_tag(ball: Mesh, tmp_path: Path) -> None:
    """3D Slicer reads the STL header, PLY comments and OBJ leading comment with these readers
    and looks for ``SPACE=RAS`` / ``SPACE=LPS``."""
    geometry = pytest.importorskip("vtkmodules.vtkIOGeometry")
    ply_io = pytest.importorskip("vtkmodules.vtkIOPLY")
    stl = geometry.vtkSTLReader()
    stl.SetFileName(str(export_mesh(ball, tmp_path / "b_ras.stl", coordinate_system="RAS")))
    stl.Update()
    assert "SPACE=RAS" in stl.GetHeader()
    ply = ply_io.vtkPLYReader()
    ply.SetFileName(str(export_mesh(ball, tmp_path / "b_lps.ply")))
    ply.Update()
    comments = ply.GetComments()
    assert "SPACE=LPS" in [comments.GetValue(i) for i in range(comments.GetNumberOfValues())]
    assert ply.GetOutput().GetNumberOfPoints() == ball.n_vertices
    obj = geometry.vtkOBJReader()
    obj.SetFileName(str(export_mesh(ball, tmp_path / "b_lps.obj")))
    obj.Update()
    assert "SPACE=LPS" in obj.GetComment()
    assert obj.GetOutput().GetNumberOfPolys() == ball.n_triangles


def test_refuses_to_overwrite(ball: Mesh, tmp_path: Path) -> None:
    path = tmp_path / "ball_lps.stl"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsRefusedError):
        export_mesh(ball, path)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ball_lps.stl"]  # no temp file left
    export_mesh(ball, path, overwrite=True)
    assert path.read_bytes()[:9] == b"SPACE=LPS"


def test_export_meshes_writes_all_or_nothing(ball: Mesh, tmp_path: Path) -> None:
    meshes = {"bone": ball, "root L5/left": ball, "dura": Mesh.empty(name="dura")}
    written = export_meshes(meshes, tmp_path / "out", formats=("stl", ".ply"),
                            coordinate_system="RAS")
    assert [p.name for p in written] == ["bone_ras.stl", "bone_ras.ply", "root_L5_left_ras.stl",
                                         "root_L5_left_ras.ply"]  # the empty dura is skipped
    assert all(space_tag(p) == "RAS" for p in written)
    # One existing target: nothing new is written.
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "root_L5_left_lps.stl").write_bytes(b"x")
    with pytest.raises(FileExistsRefusedError):
        export_meshes(meshes, tmp_path / "out2")
    assert [p.name for p in (tmp_path / "out2").iterdir()] == ["root_L5_left_lps.stl"]


def test_bad_requests(ball: Mesh, tmp_path: Path) -> None:
    assert mesh_filename("L5 body", "lps", ".OBJ") == "L5_body_lps.obj"
    with pytest.raises(MeshExportError, match="format"):
        export_mesh(ball, tmp_path / "ball.vtk")
    with pytest.raises(MeshExportError, match="LPS or RAS"):
        export_mesh(ball, tmp_path / "ball.stl", coordinate_system="RAI")
    with pytest.raises(MeshExportError, match="empty"):
        export_mesh(Mesh.empty(name="x"), tmp_path / "x.stl")
    with pytest.raises(MeshExportError, match="unknown mesh format"):
        mesh_filename("a", "LPS", "vtp")
    assert not any(tmp_path.iterdir())
