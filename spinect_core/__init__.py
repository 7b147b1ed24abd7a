"""SPINECT planner core: headless library for CT loading, segmentation and L5/S1 planning.

This package never imports Qt or VTK rendering; it runs on a server or in a worker thread.
World coordinates are LPS millimetres throughout; numpy volumes are indexed (z, y, x).
"""

__version__ = "0.1.0"

from spinect_core.errors import Cancelled, SpinectError  # noqa: E402
from spinect_core.volume import Volume  # noqa: E402

__all__ = ["__version__", "Cancelled", "SpinectError", "Volume"]
