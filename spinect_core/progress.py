"""Progress reporting and cancellation for long computations.

A long function takes ``progress: ProgressCallback | None``. It is called as
``progress(fraction, message)`` with ``fraction`` in [0, 1]; returning ``False`` asks to cancel,
and the function then raises :class:`~spinect_core.errors.Cancelled`. ``None`` (and returning
``None`` or ``True``) means carry on. The desktop app maps this onto a progress bar and a Cancel
button; the CLI onto a tqdm bar.
"""

from __future__ import annotations

from typing import Callable, Optional

from spinect_core.errors import Cancelled

ProgressCallback = Callable[[float, str], Optional[bool]]


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Report progress and raise :class:`Cancelled` if the callback returns ``False``."""
    if progress is None:
        return
    if progress(min(max(float(fraction), 0.0), 1.0), message) is False:
        raise Cancelled()


def sub_progress(
    progress: ProgressCallback | None, start: float, stop: float, prefix: str = ""
) -> ProgressCallback | None:
    """Map a sub-task's [0, 1] progress onto ``[start, stop]`` of the parent's.

    Parameters
    ----------
    progress : callable or None
        The parent's callback.
    start, stop : float
        The parent's fractions at which the sub-task begins and ends.
    prefix : str
        Prepended to the sub-task's messages (e.g. ``"Segmenting: "``).
    """
    if progress is None:
        return None

    def _child(fraction: float, message: str) -> bool | None:
        return progress(start + (stop - start) * fraction, prefix + message)

    return _child


class TqdmProgress:
    """A :data:`ProgressCallback` that drives a tqdm bar on the terminal (for the CLI)."""

    def __init__(self, description: str = "", *, disable: bool = False) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1000, desc=description, disable=disable, leave=True,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, fraction: float, message: str) -> bool:
        self._bar.n = int(round(1000 * fraction))
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.refresh()
        return True

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
