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
    try:
        assert gc_guard.install(qapp) is guard  # installed once
        assert not gc.isenabled()
        # Start from empty generations: after a long test run an older generation may be due
        # first, and the new cycle must sit in the generation the timer collects.
        gc.collect()
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        ref = weakref.ref(a)
        del a, b
        assert ref() is not None  # nothing collects it by itself now
        keep = [[] for _ in range(guard.threshold[0] + 10)]  # fill generation 0 past its threshold
        qtbot.waitUntil(lambda: ref() is None, timeout=15_000)
        del keep
    finally:
        if was_enabled:
            gc.enable()
