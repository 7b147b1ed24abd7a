"""The 3D view: structure surfaces (pyvistaqt), orientation marker, camera control and hook.

Meshes arrive as core :class:`~spinect_core.surfaces.Mesh` objects (numpy, LPS mm) from a
worker; they are turned into VTK objects and rendered here, on the GUI thread only. The world of
the scene is LPS: +x = patient left, +y = posterior, +z = superior.

Planning hooks (stage 2 wires them to the planning engine):

* :attr:`View3D.view_direction_changed` fires at most every :data:`CAMERA_THROTTLE_MS` after the
  camera moved, with the current view direction in LPS (rays travel along it).
* :meth:`View3D.set_view_direction` points the camera along a direction with the cranial axis up.
* :meth:`View3D.highlight` emphasises a set of structures (e.g. L5 and S1) and dims the rest.

Planning overlays: :meth:`View3D.set_window_outlines` draws the Kambin (red) and safe (cyan)
window outlines of the current view on an overlay layer, so they stay visible through bone;
:meth:`View3D.set_roots` draws the nerve roots' centrelines and control points (the roots the
operator edits in the slice views), :meth:`View3D.set_needles` draws each side's needle as a thin cylinder from the skin entry to
the target with a sphere at the tip (and a faint copy on the overlay where bone hides it). In
*target picking* mode (:meth:`View3D.set_pick_plane`) a left click puts a point on the plane
through the current target perpendicular to the needle and emits :attr:`View3D.target_picked`.
"""

from __future__ import annotations

import io
from typing import Iterable, Mapping

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from spinect_core.surfaces import Mesh
from spinect_core.vocabulary import WINDOW_COLOURS

from app.camera import POSTERIOR_VIEW, direction_of, pose_for_direction
from app.colors import color_of_float, default_opacity
from app.widgets.root_overlay import ROOT_COLOURS, RootOverlay

__all__ = ["View3D", "CAMERA_THROTTLE_MS", "WINDOW_COLORS", "NEEDLE_COLOR"]

CAMERA_THROTTLE_MS = 100
#: Outline colours of the windows (RGB 0-255): Kambin red, safe cyan (the one table of
#: :mod:`spinect_core.vocabulary`, as in the exported screenshots).
WINDOW_COLORS = WINDOW_COLOURS
#: The planned needle (RGB 0-255): orange, apart from the yellow nerves and red Kambin outline.
NEEDLE_COLOR = (255, 140, 0)
#: Drawn radius of the needle and of its tip marker, mm (a 22 G needle is 0.72 mm thick; the
#: drawing is thicker so it stays visible in the whole-spine view).
NEEDLE_DRAW_RADIUS_MM = 0.8
TIP_RADIUS_MM = 1.6
BACKGROUND_TOP = "#303a46"
BACKGROUND_BOTTOM = "#0f1418"
_DIMMED = 0.12


def _orientation_marker():
    """Patient-direction arrows of the LPS world: +x = L (left), +y = P (posterior), +z = S.

    Arrows rather than a lettered cube: in the straight PA view a cube shows only its P face,
    while the L and S arrows stay readable from every direction.
    """
    import pyvista as pv

    axes = pv.create_axes_marker(xlabel="L", ylabel="P", zlabel="S", x_color="#e0645c",
                                 y_color="#5cb85c", z_color="#5b9bd5", label_color="#e6e6e6",
                                 line_width=3, cone_radius=0.5, label_size=(0.35, 0.16))
    for caption in (axes.GetXAxisCaptionActor2D(), axes.GetYAxisCaptionActor2D(),
                    axes.GetZAxisCaptionActor2D()):
        caption.GetCaptionTextProperty().BoldOn()
        caption.GetCaptionTextProperty().ShadowOff()
    return axes


def mesh_to_polydata(mesh: Mesh):
    """A pyvista PolyData of a core mesh (LPS mm), with its vertex normals when present."""
    import pyvista as pv

    poly = pv.PolyData.from_regular_faces(np.asarray(mesh.vertices_lps_mm, np.float32),
                                          np.asarray(mesh.faces, np.int64))
    if mesh.normals is not None:
        poly.point_data["Normals"] = np.asarray(mesh.normals, np.float32)
        poly.point_data.active_normals_name = "Normals"
    return poly


class View3D(QWidget):
    """pyvistaqt view of the case's surfaces.

    Signals
    -------
    view_direction_changed(object)
        ``np.ndarray`` (3,), unit LPS direction the rays travel, throttled.
    target_picked(object)
        ``np.ndarray`` (3,), LPS point clicked on the pick plane (target picking mode).
    """

    view_direction_changed = Signal(object)
    target_picked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from pyvistaqt import QtInteractor

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # auto_update off: we render after each change instead of on a timer (CPU is shared).
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=4)
        layout.addWidget(self.plotter.interactor)
        self.plotter.set_background(BACKGROUND_BOTTOM, top=BACKGROUND_TOP)
        self.plotter.enable_anti_aliasing("fxaa")
        # Parallel projection, like the planning engine's rays: at a best view the window outline
        # lies exactly over the opening it measures, and the needle is seen end-on.
        self.plotter.renderer.GetActiveCamera().ParallelProjectionOn()
        self._marker = self.plotter.add_orientation_widget(_orientation_marker(),
                                                           viewport=(0.0, 0.0, 0.15, 0.22))
        self._actors: dict[str, object] = {}
        self._opacity: dict[str, float] = {}
        self._visible: dict[str, bool] = {}
        self._highlight: set[str] | None = None
        self._hint_actor = None
        self._box_actor = None
        self._camera_timer = QTimer(self)
        self._camera_timer.setSingleShot(True)
        self._camera_timer.setInterval(CAMERA_THROTTLE_MS)
        self._camera_timer.timeout.connect(self._emit_view_direction)
        self._observed_camera = None
        self._observe_camera()
        self._overlay = self._make_overlay_layer()
        self._outline_actors: dict[str, object] = {}
        self._needle_actors: dict[str, list] = {}
        self._ghost_actors: dict[str, object] = {}
        self._root_actors: dict[str, object] = {}
        #: Control points shown per root, ``"side:name"`` -> (K, 3) LPS mm.
        self.root_points: dict[str, np.ndarray] = {}
        self.needle_endpoints: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._pick_plane: tuple[np.ndarray, np.ndarray] | None = None
        self.plotter.interactor.installEventFilter(self)
        self.show_hint("Open a CT: drop a DICOM folder, zip or NIfTI file")

    # --- content ---------------------------------------------------------------------------------
    def set_meshes(self, meshes: Mapping[str, Mesh], *, reset_camera: bool = True) -> None:
        """Replace the displayed surfaces (empty meshes are skipped)."""
        self.clear_meshes(render=False)
        for name, mesh in meshes.items():
            if mesh.is_empty:
                continue
            opacity = self._opacity.setdefault(name, default_opacity(name))
            self._visible.setdefault(name, True)
            actor = self.plotter.add_mesh(
                mesh_to_polydata(mesh), color=color_of_float(name), opacity=opacity,
                smooth_shading=True, specular=0.25, specular_power=20, ambient=0.12,
                diffuse=0.85, name=f"mesh:{name}", reset_camera=False, render=False)
            actor.SetVisibility(self._visible[name])
            self._actors[name] = actor
        self.show_hint("" if self._actors else "No surfaces")
        self._apply_highlight()
        if reset_camera and self._actors:
            self.set_view_direction(POSTERIOR_VIEW)
        self.render()

    def clear_meshes(self, *, render: bool = True) -> None:
        for name in list(self._actors):
            self.plotter.remove_actor(f"mesh:{name}", render=False)
        self._actors.clear()
        if render:
            self.render()

    def set_volume_box(self, bounds_lps_mm: np.ndarray | None) -> None:
        """Outline of the CT's extent (shown while there are no surfaces yet)."""
        import pyvista as pv

        if self._box_actor is not None:
            self.plotter.remove_actor(self._box_actor, render=False)
            self._box_actor = None
        if bounds_lps_mm is not None:
            lo, hi = np.asarray(bounds_lps_mm, float)
            box = pv.Box(bounds=(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
            self._box_actor = self.plotter.add_mesh(
                box.extract_all_edges(), color="#7f8c99", line_width=1, name="ct-box",
                reset_camera=False, render=False, pickable=False)
            if not self._actors:
                self.set_view_direction(POSTERIOR_VIEW)
        self.render()

    def show_hint(self, text: str) -> None:
        """A short grey line in the lower-left corner (what to do next); ``""`` hides it."""
        if self._hint_actor is not None:
            self.plotter.remove_actor(self._hint_actor, render=False)
            self._hint_actor = None
        if text:
            self._hint_actor = self.plotter.add_text(text, position="lower_left", font_size=9,
                                                     color="#aab4be", name="hint")

    @property
    def structure_names(self) -> list[str]:
        return list(self._actors)

    def set_visible(self, name: str, visible: bool) -> None:
        self._visible[name] = bool(visible)
        if name in self._actors:
            self._actors[name].SetVisibility(bool(visible))
            self.render()

    def set_opacity(self, name: str, opacity: float) -> None:
        self._opacity[name] = float(np.clip(opacity, 0.0, 1.0))
        self._apply_highlight()
        self.render()

    def highlight(self, names: Iterable[str] | None) -> None:
        """Emphasise ``names`` (e.g. ``{"L5", "S1"}``) and dim every other structure.

        ``None`` or an empty set restores the normal display.
        """
        self._highlight = set(names) if names else None
        self._apply_highlight()
        self.render()

    def _apply_highlight(self) -> None:
        for name, actor in self._actors.items():
            opacity = self._opacity.get(name, 1.0)
            if self._highlight is not None and name not in self._highlight:
                opacity = min(opacity, _DIMMED)
            actor.GetProperty().SetOpacity(opacity)
            actor.GetProperty().SetAmbient(0.35 if self._highlight and name in self._highlight
                                           else 0.12)

    # --- planning overlays ------------------------------------------------------------------------
    def _make_overlay_layer(self):
        """A renderer drawn over the scene (own depth buffer) that shares the scene's camera."""
        from vtkmodules.vtkRenderingCore import vtkRenderer

        window = self.plotter.render_window
        layer = window.GetNumberOfLayers()
        overlay = vtkRenderer()
        overlay.SetLayer(layer)
        overlay.InteractiveOff()
        overlay.SetActiveCamera(self.plotter.renderer.GetActiveCamera())
        window.SetNumberOfLayers(layer + 1)
        window.AddRenderer(overlay)
        return overlay

    @staticmethod
    def _overlay_actor(poly, color: tuple[int, int, int]):
        """An unlit, unpickable actor of ``poly`` in ``color`` (0-255 RGB) and its property."""
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        actor = vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetColor(*(c / 255.0 for c in color))
        actor.PickableOff()
        return actor, prop

    @classmethod
    def _line_actor(cls, polylines: list[np.ndarray], color: tuple[int, int, int], *,
                    width: float, opacity: float = 1.0, closed: bool = True):
        import pyvista as pv

        points, cells, start = [], [], 0
        for line in polylines:
            pts = np.asarray(line, float).reshape(-1, 3)
            if len(pts) < 2:
                continue
            ids = list(range(start, start + len(pts))) + ([start] if closed else [])
            cells += [len(ids)] + ids
            points.append(pts)
            start += len(pts)
        poly = pv.PolyData(np.vstack(points), lines=np.asarray(cells, np.int64))
        actor, prop = cls._overlay_actor(poly, color)
        prop.SetLineWidth(width)
        prop.SetOpacity(opacity)
        prop.LightingOff()
        return actor

    def set_window_outlines(self, outlines: Mapping[tuple[str, str], list[np.ndarray]] | None
                            ) -> None:
        """Draw window outlines ((side, kind) -> closed (K, 3) LPS polylines) over the scene."""
        for actor in self._outline_actors.values():
            self._overlay.RemoveActor(actor)
        self._outline_actors.clear()
        for (side, kind), polys in (outlines or {}).items():
            polys = [p for p in polys if len(p) >= 3]
            if not polys:
                continue
            actor = self._line_actor(polys, WINDOW_COLORS.get(kind, (255, 255, 255)), width=3.0)
            self._overlay.AddActor(actor)
            self._outline_actors[f"{side}:{kind}"] = actor
        self.render()

    @property
    def outline_names(self) -> list[str]:
        """``side:kind`` of the outlines shown."""
        return list(self._outline_actors)

    def set_needles(self, needles: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    active: str | None = None) -> None:
        """Draw each side's needle (entry, target LPS mm); ``active`` is drawn brighter."""
        import pyvista as pv

        for side in list(self._needle_actors):
            for name in self._needle_actors.pop(side):
                self.plotter.remove_actor(name, render=False)
        for actor in self._ghost_actors.values():
            self._overlay.RemoveActor(actor)
        self._ghost_actors.clear()
        self.needle_endpoints = {}
        color = tuple(c / 255.0 for c in NEEDLE_COLOR)
        for side, (entry, target) in needles.items():
            entry = np.asarray(entry, float).reshape(3)
            target = np.asarray(target, float).reshape(3)
            axis = target - entry
            length = float(np.linalg.norm(axis))
            if length < 1e-6:
                continue
            self.needle_endpoints[side] = (entry, target)
            dim = active is not None and side != active
            shaft = pv.Cylinder(center=(entry + target) / 2, direction=axis / length,
                                radius=NEEDLE_DRAW_RADIUS_MM, height=length, resolution=24)
            tip = pv.Sphere(radius=TIP_RADIUS_MM, center=target, theta_resolution=24,
                            phi_resolution=16)
            names = [f"needle:{side}", f"needle-tip:{side}"]
            for mesh, name in zip((shaft, tip), names):
                self.plotter.add_mesh(mesh, color=color, opacity=0.55 if dim else 1.0,
                                      smooth_shading=True, ambient=0.35, diffuse=0.75,
                                      specular=0.3, name=name, reset_camera=False, render=False,
                                      pickable=False)
            self._needle_actors[side] = names
            ghost = self._line_actor([np.stack([entry, target])], NEEDLE_COLOR, width=2.0,
                                     opacity=0.35, closed=False)
            self._overlay.AddActor(ghost)
            self._ghost_actors[side] = ghost
        self.plotter.renderer.ResetCameraClippingRange()
        self.render()

    def set_roots(self, overlay: RootOverlay | None) -> None:
        """Draw the plan's nerve roots: each centreline (LPS mm) as a line and its control points
        as small spheres, in the roots' colours (:data:`app.widgets.root_overlay.ROOT_COLOURS`).

        Drawn on the overlay layer, so a root stays visible inside the nerve's and the bones'
        surfaces; None removes them. Called after each root edit, undo and redo.
        """
        for actor in self._root_actors.values():
            self._overlay.RemoveActor(actor)
        self._root_actors.clear()
        self.root_points = {}
        for side, name, line in (overlay.lines if overlay is not None else ()):
            colour = ROOT_COLOURS.get(name, (255, 255, 255))
            key = f"{side}:{name}"
            line = np.asarray(line, float).reshape(-1, 3)
            if len(line) >= 2:
                actor = self._line_actor([line], colour, width=3.0, closed=False)
                self._overlay.AddActor(actor)
                self._root_actors[f"line:{key}"] = actor
            points = np.array([h.lps for h in overlay.handles  # type: ignore[union-attr]
                               if (h.side, h.name) == (side, name)], float).reshape(-1, 3)
            if len(points):
                actor = self._points_actor(points, colour, size_px=9.0)
                self._overlay.AddActor(actor)
                self._root_actors[f"points:{key}"] = actor
                self.root_points[key] = points
        self.render()

    @property
    def root_names(self) -> list[str]:
        """``line:side:name`` and ``points:side:name`` of the root actors shown."""
        return list(self._root_actors)

    @classmethod
    def _points_actor(cls, points: np.ndarray, color: tuple[int, int, int], *, size_px: float):
        """Points (K, 3) LPS mm drawn as shaded spheres of a fixed screen size."""
        import pyvista as pv

        actor, prop = cls._overlay_actor(pv.PolyData(np.asarray(points, float).reshape(-1, 3)),
                                         color)
        prop.SetPointSize(size_px)
        prop.SetRenderPointsAsSpheres(True)
        prop.SetRepresentationToPoints()
        return actor

    def needle_actor(self, side: str):
        """The shaft actor of ``side``'s needle, or None."""
        return self.plotter.actors.get(f"needle:{side}")

    def set_marker(self, point_lps: np.ndarray | None, *, half_mm: float = 6.0) -> None:
        """Mark the 2D views' crosshair point (LPS mm) with three short axes (None removes it).

        Drawn on the overlay layer, so the point stays visible inside bone.
        """
        if getattr(self, "_marker_actor", None) is not None:
            self._overlay.RemoveActor(self._marker_actor)
        self._marker_actor = None
        self.marker_lps = None
        if point_lps is not None:
            p = np.asarray(point_lps, float).reshape(3)
            axes = [np.stack([p - half_mm * e, p + half_mm * e]) for e in np.eye(3)]
            self._marker_actor = self._line_actor(axes, (90, 170, 230), width=2.0, closed=False)
            self._overlay.AddActor(self._marker_actor)
            self.marker_lps = p
        self.render()

    def set_pick_plane(self, point_lps: np.ndarray | None,
                       normal_lps: np.ndarray | None = None) -> None:
        """Target picking: clicks land on the plane through ``point`` across ``normal``.

        ``None`` ends picking (the mouse rotates the view again).
        """
        if point_lps is None or normal_lps is None:
            self._pick_plane = None
            self.plotter.interactor.unsetCursor()
        else:
            n = np.asarray(normal_lps, float).reshape(3)
            self._pick_plane = (np.asarray(point_lps, float).reshape(3), n / np.linalg.norm(n))
            self.plotter.interactor.setCursor(Qt.CursorShape.CrossCursor)

    @property
    def picking(self) -> bool:
        return self._pick_plane is not None

    def display_ray(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """World ray (origin, unit direction) through VTK display pixel (x, y), origin lower left."""
        renderer = self.plotter.renderer
        ends = []
        for z in (0.0, 1.0):
            renderer.SetDisplayPoint(float(x), float(y), z)
            renderer.DisplayToWorld()
            w = np.array(renderer.GetWorldPoint(), float)
            ends.append(w[:3] / w[3])
        direction = ends[1] - ends[0]
        return ends[0], direction / np.linalg.norm(direction)

    def world_to_widget(self, point_lps: np.ndarray) -> tuple[float, float]:
        """Widget (Qt, logical pixels, origin top left) position of an LPS point."""
        renderer = self.plotter.renderer
        renderer.SetWorldPoint(*np.asarray(point_lps, float).reshape(3), 1.0)
        renderer.WorldToDisplay()
        x, y, _ = renderer.GetDisplayPoint()
        ratio = self.plotter.interactor.devicePixelRatioF()
        height = self.plotter.interactor.height() * ratio
        return x / ratio, (height - y) / ratio

    def pick_at_widget(self, x: float, y: float) -> np.ndarray | None:
        """The pick plane's point under widget position (x, y), or None (no plane / parallel)."""
        if self._pick_plane is None:
            return None
        ratio = self.plotter.interactor.devicePixelRatioF()
        height = self.plotter.interactor.height() * ratio
        origin, direction = self.display_ray(x * ratio, height - y * ratio)
        point, normal = self._pick_plane
        denom = float(direction @ normal)
        if abs(denom) < 1e-6:
            return None
        return origin + float((point - origin) @ normal) / denom * direction

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if (self._pick_plane is not None and event.type() == QEvent.Type.MouseButtonPress
                and event.button() == Qt.MouseButton.LeftButton):
            pos = event.position()
            point = self.pick_at_widget(pos.x(), pos.y())
            if point is not None:
                self.target_picked.emit(point)
            return True  # no rotation while picking
        return super().eventFilter(watched, event)

    # --- camera ----------------------------------------------------------------------------------
    def scene_bounds(self) -> np.ndarray | None:
        """(2, 3) LPS bounds of the visible content, or None when empty."""
        actors = [a for a in self._actors.values() if a.GetVisibility()] or list(self._actors.values())
        if not actors and self._box_actor is not None:
            actors = [self._box_actor]
        if not actors:
            return None
        b = np.array([a.GetBounds() for a in actors], float)
        return np.array([[b[:, 0].min(), b[:, 2].min(), b[:, 4].min()],
                         [b[:, 1].max(), b[:, 3].max(), b[:, 5].max()]])

    def set_view_direction(self, direction_lps: np.ndarray,
                           focal_lps_mm: np.ndarray | None = None, *,
                           zoom: float = 1.0) -> None:
        """Look along ``direction_lps`` (rays travel along it) with the patient's head up.

        Parameters
        ----------
        direction_lps : (3,) array
            View direction in LPS; need not be unit length.
        focal_lps_mm : (3,) array, optional
            Point to look at (e.g. the L5/S1 foramen); default the centre of the scene.
        zoom : float
            Magnification relative to the whole-scene view (> 1: closer).
        """
        bounds = self.scene_bounds()
        if focal_lps_mm is None:
            focal_lps_mm = bounds.mean(axis=0) if bounds is not None else np.zeros(3)
        size = float(np.linalg.norm(bounds[1] - bounds[0])) if bounds is not None else 300.0
        # A bounding sphere of diameter `size` fills a 30 degree view angle at ~1.9 x size.
        pose = pose_for_direction(direction_lps, focal_lps_mm,
                                  distance_mm=(1.4 * size + 10.0) / max(float(zoom), 1e-3))
        camera = self.plotter.camera
        camera.SetFocalPoint(*pose.focal_point)
        camera.SetPosition(*pose.position)
        camera.SetViewUp(*pose.view_up)
        camera.ParallelProjectionOn()
        # Half the visible height: what a 30 degree perspective view showed at that distance.
        camera.SetParallelScale(0.375 * size / max(float(zoom), 1e-3))
        self.plotter.renderer.ResetCameraClippingRange()
        self._observe_camera()
        self._overlay.SetActiveCamera(camera)
        self.render()

    def view_direction(self) -> np.ndarray:
        """Current unit view direction in LPS (rays travel along it)."""
        camera = self.plotter.camera
        return direction_of(np.array(camera.GetPosition()), np.array(camera.GetFocalPoint()))

    def _observe_camera(self) -> None:
        camera = self.plotter.renderer.GetActiveCamera()
        if camera is not self._observed_camera:
            camera.AddObserver("ModifiedEvent", self._on_camera_modified)
            self._observed_camera = camera

    def _on_camera_modified(self, *_args) -> None:
        # Restarting the timer on every modification emits once after the motion pauses.
        self._camera_timer.start()

    def _emit_view_direction(self) -> None:
        try:
            self.view_direction_changed.emit(self.view_direction())
        except ValueError:  # degenerate camera (position == focal point)
            pass

    # --- output ----------------------------------------------------------------------------------
    def render(self) -> None:
        camera = self.plotter.renderer.GetActiveCamera()
        if self._overlay.GetActiveCamera() is not camera:
            self._overlay.SetActiveCamera(camera)
        self.plotter.render()

    def screenshot_array(self) -> np.ndarray:
        """(h, w, 3) uint8 RGB of the current 3D view."""
        self.plotter.render()
        return np.asarray(self.plotter.screenshot(None, return_img=True))

    def screenshot_png(self) -> bytes:
        """PNG bytes of the current 3D view."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.screenshot_array()).save(buffer, format="PNG")
        return buffer.getvalue()

    def close_plotter(self) -> None:
        """Release VTK resources (window close)."""
        self._camera_timer.stop()
        self._pick_plane = None
        self.plotter.close()
