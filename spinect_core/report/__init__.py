"""Plan outputs: the software 3D renderer for screenshots, area-vs-view maps, the HTML report and
:func:`write_plan_outputs`, which writes every file of a plan into one folder (CLI, demo and app).
"""

from spinect_core.report.exports import (PLAN_JSON, REPORT_HTML, ExportOptions, check_output_dir,
                                         plan_document, plan_output_paths, render_screenshot,
                                         validate_plan_document, write_plan_outputs)
from spinect_core.report.html import INTENDED_USE, carm_instruction, plan_report_html
from spinect_core.report.maps import AreaMapOptions, colormap, render_area_map
from spinect_core.report.render import (CLASS_COLOURS, NEEDLE_COLOUR, WINDOW_COLOURS, Overlay,
                                        RenderedView, SceneRenderOptions, class_of, draw_overlays,
                                        render_view)

__all__ = [
    "PLAN_JSON", "REPORT_HTML", "ExportOptions", "check_output_dir", "plan_document",
    "plan_output_paths", "render_screenshot", "validate_plan_document", "write_plan_outputs",
    "INTENDED_USE", "carm_instruction", "plan_report_html",
    "AreaMapOptions", "colormap", "render_area_map",
    "CLASS_COLOURS", "NEEDLE_COLOUR", "WINDOW_COLOURS", "Overlay", "RenderedView",
    "SceneRenderOptions", "class_of", "draw_overlays", "render_view",
]
