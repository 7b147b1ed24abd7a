"""The one observable holder of the app's state (:class:`app.state.AppState`).

The state is immutable: a change builds a new value (:meth:`StateStore.replace`,
:meth:`StateStore.replace_session`, :meth:`StateStore.replace_view`) and the store emits
``changed(old, new)`` exactly once for it, on the GUI thread. Readers hold a whole, consistent
state; nothing edits one in place behind their back. Listeners compare fields by identity
(``old.session.plan is not new.session.plan``) to redraw only what changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.state import AppState, Session, ViewState

__all__ = ["StateStore"]


class StateStore(QObject):
    """Holds the current :class:`AppState` and announces every replacement.

    Parameters
    ----------
    state : AppState, optional
        The initial state (default: no case).

    Signals
    -------
    changed(object, object)
        The old and the new :class:`AppState`, once per replacement.
    """

    changed = Signal(object, object)

    def __init__(self, state: AppState | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state if state is not None else AppState()

    @property
    def state(self) -> AppState:
        return self._state

    @property
    def session(self) -> Session:
        return self._state.session

    @property
    def view(self) -> ViewState:
        return self._state.view

    def set(self, new: AppState) -> AppState:
        """Replace the state by ``new`` and emit ``changed(old, new)`` (nothing if identical)."""
        old = self._state
        if new is old:
            return old
        self._state = new
        self.changed.emit(old, new)
        return new

    def replace(self, **changes: Any) -> AppState:
        """A new state with these top-level fields replaced (``session=``, ``view=``, ...)."""
        return self.set(dataclasses.replace(self._state, **changes))

    def replace_session(self, session: Session | None = None, /, **changes: Any) -> AppState:
        """A new state whose session is ``session`` (default the current one) with ``changes``."""
        base = session if session is not None else self._state.session
        return self.replace(session=dataclasses.replace(base, **changes) if changes else base)

    def replace_view(self, **changes: Any) -> AppState:
        """A new state with these :class:`ViewState` fields replaced."""
        return self.replace(view=dataclasses.replace(self._state.view, **changes))
