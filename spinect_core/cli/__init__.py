"""``spinect`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``handler=run`` where
``run(args) -> int`` is the exit code.

Every failure ends in one line on stderr, never a traceback:

* ``spinect: error: <message>``, exit code 2, for what the user can act on: a
  :class:`~spinect_core.errors.SpinectError` (bad input, weights, an existing output), an
  ``OSError`` (a read-only folder, a full disk, a file that vanished), ``MemoryError`` and
  argparse's errors (bad option values, missing arguments);
* ``spinect: cancelled``, exit code 130, for Ctrl-C (``KeyboardInterrupt``), SIGTERM and a
  cancelled progress callback; the subcommands write their outputs under temporary names and
  move them into place at the end, so nothing half-written is left;
* ``spinect: internal error (<type>): ...; details in <log>``, exit code 1, for anything else:
  the traceback goes into a crash log in the user's log folder (:func:`user_log_dir`, the
  desktop app's), with every command-line value and the folder names in it replaced by
  placeholders, since input folders are often named after the patient.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import os
import platform
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Sequence

from spinect_core import __version__
from spinect_core.errors import Cancelled, SpinectError

#: Subcommand modules in the order ``spinect --help`` lists them.
COMMANDS = ("info", "segment", "evaluate", "phantom", "train", "window", "plan", "validate",
            "export_case", "demo", "pacs")

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    from spinect_core.cli.segment import one_line_errors

    parser = argparse.ArgumentParser(
        prog="spinect",
        description="SPINECT planner: CT segmentation of bone and lumbosacral nerves and L5/S1 "
        "transforaminal injection planning. Coordinates are LPS millimetres.",
    )
    parser.add_argument("--version", action="version", version=f"spinect {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"spinect_core.cli.{name}")
        module.register(sub)
    # Every parser's errors are one line with exit code 2 (idempotent for those already set).
    one_line_errors(parser)
    for p in sub.choices.values():
        one_line_errors(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spinect`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with _sigterm_as_interrupt():
        try:
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help, --version, or an argparse error (already printed)
                return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USER_ERROR
            logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                                format="%(levelname)s %(name)s: %(message)s")
            return int(args.handler(args) or 0)
        except (KeyboardInterrupt, Cancelled):
            _say("spinect: cancelled")
            return EXIT_CANCELLED
        except SpinectError as exc:
            _say(f"spinect: error: {_one_line(exc)}")
            return EXIT_USER_ERROR
        except MemoryError:
            _say("spinect: error: not enough memory; close other programs or use a machine with "
                 "more memory")
            return EXIT_USER_ERROR
        except OSError as exc:
            _say(f"spinect: error: {os_error_message(exc)}")
            return EXIT_USER_ERROR
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback on screen
            log_path = write_crash_log(exc, argv)
            where = (f"details in {log_path}" if log_path is not None
                     else "the crash log could not be written")
            _say(f"spinect: internal error ({type(exc).__name__}): {_one_line(exc)[:200]}; "
                 f"{where}; please report it")
            return EXIT_INTERNAL_ERROR


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: nothing more to do
        pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: what failed, on which file, and what to do."""
    import errno

    reason = (exc.strerror or _one_line(exc)).rstrip(".")
    target = exc.filename if exc.filename is not None else ""
    where = f" ({target})" if target else ""
    advice = {
        errno.ENOSPC: "free some space or choose another output folder",
        errno.EDQUOT: "free some space or choose another output folder",
        errno.EACCES: "check the permissions or choose another folder",
        errno.EPERM: "check the permissions or choose another folder",
        errno.EROFS: "the medium is read-only; choose another output folder",
        errno.ENOENT: "check the path",
    }.get(exc.errno or -1, "check the path and the disk")
    return f"{reason.lower()}{where}; {advice}"


class _sigterm_as_interrupt:
    """Treat SIGTERM (a job scheduler, ``kill``) like Ctrl-C while ``main`` runs, so temporary
    outputs are removed the same way; the previous handler is restored afterwards."""

    def __enter__(self) -> "_sigterm_as_interrupt":
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGTERM, self._handler)
            except (ValueError, OSError):
                self.previous = None
        return self

    @staticmethod
    def _handler(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


# --- crash log -----------------------------------------------------------------------------------
def user_log_dir() -> Path:
    """The per-user log folder of the CLI's crash logs and the desktop app's log
    (``app.logs`` imports it from here): ``SPINECT_LOG_DIR``, else ``%LOCALAPPDATA%\\spinect\\logs`` (Windows),
    ``~/Library/Logs/spinect`` (macOS), ``$XDG_STATE_HOME/spinect/log`` or
    ``~/.local/state/spinect/log``."""
    override = os.environ.get("SPINECT_LOG_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "spinect" / "logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / "spinect"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "spinect" / "log"


#: Path components too generic to hide (hiding them would only garble the traceback).
_GENERIC = {"", ".", "..", "/", "tmp", "home", "users", "data", "var", "mnt", "media", "volumes",
            "private", "opt", "srv"}


def _secrets(argv: Sequence[str]) -> list[str]:
    """Strings of the command line a log must not contain: every value, their absolute forms
    and the names of the files and folders along them (but not the user's home above them)."""
    found: set[str] = set()
    home_parts = set(Path.home().parts)
    for value in argv:
        if not value or value.startswith("-") and "=" not in value:
            continue
        value = value.split("=", 1)[1] if value.startswith("-") else value
        found.add(value)
        if os.sep in value or "/" in value or Path(value).exists():
            absolute = Path(value).expanduser().absolute()
            found.add(str(absolute))
            try:
                found.add(str(absolute.resolve()))
            except OSError:
                pass
            for part in absolute.parts:
                if part.lower() not in _GENERIC and part not in home_parts and len(part) > 2:
                    found.add(part)
    return sorted((s for s in found if len(s) > 2), key=len, reverse=True)


def redact(text: str, argv: Sequence[str]) -> str:
    """``text`` with the command line's values and folder names replaced by ``<arg>``."""
    for secret in _secrets(argv):
        text = text.replace(secret, "<arg>")
    return text


def write_crash_log(exc: BaseException, argv: Sequence[str]) -> Path | None:
    """Write the traceback of ``exc`` to a new file in :func:`user_log_dir`; its path, or None.

    The log holds the version, Python, the platform, the subcommand (not its arguments) and the
    traceback; exception messages are redacted with :func:`redact` and the source lines are code
    (the code lines of a traceback quote the program, not the user's data).
    """
    command = next((a for a in argv if a in COMMANDS), "?")
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    body = []
    for chunk in lines:
        for line in chunk.splitlines():
            # "  File ..." and the indented source lines are the program; the rest are messages.
            body.append(line if line.startswith("  ") else redact(line, argv))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "\n".join([
        f"spinect {__version__} internal error in 'spinect {command}'",
        f"time: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"python: {platform.python_version()} on {platform.platform()}",
        "command-line values and folder names are replaced by <arg>",
        "",
        *body,
        "",
    ])
    try:
        folder = user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"spinect-crash-{stamp}-{os.getpid()}.log"
        path.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return path


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
