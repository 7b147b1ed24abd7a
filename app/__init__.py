"""SPINECT planner desktop application (Qt).

The only package that imports Qt, pyvistaqt or VTK rendering. Widgets bind to one state object
(:class:`app.state.Session`) and call :mod:`spinect_core`; long computations run in workers
(:mod:`app.workers`), and everything that draws stays on the GUI thread.

Entry points: ``spinect-app`` (:func:`app.main.main`) and :func:`app.main.create_app` for tests.
"""

from spinect_core import __version__

__all__ = ["__version__"]
