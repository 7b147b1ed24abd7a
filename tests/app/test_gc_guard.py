"""The GUI-thread garbage collector: automatic collection off, cycles freed by its timer."""

from __future__ import annotations

import gc
import weakref

from app import gc_guard


class _Node:
    pass


def test_cycles_are_collected_on_the_gui_thread(qtbot, qapp) -> None:
    was_enabled = gc.isenabled()
    guard = gc_guard.install(qapp)
    interval = guard.timer.interval()
    try:
        assert gc_guard.install(qapp) is guard  # installed once
        assert not gc.isenabled()
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        ref = weakref.ref(a)
        del a, b
        assert ref() is not None  # nothing collects it by itself now
        # Keep allocating, as a running app does, and let the timer check often: the cycle may
        # already sit in an older generation (a collection elsewhere promoted it; in the full
        # suite a single fill of generation 0 then timed out), which the guard collects only
        # after as many younger collections as gc itself would need.
        guard.timer.setInterval(20)
        keep: list = []

        def collected() -> bool:
            keep.append([[] for _ in range(guard.threshold[0] + 10)])  # past generation 0
            return ref() is None

        qtbot.waitUntil(collected, timeout=15_000)
        keep.clear()  # let the filler lists go now, not when the test's frame ends
    finally:
        guard.timer.setInterval(interval)
        if was_enabled:
            gc.enable()
