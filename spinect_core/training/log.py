"""Training log: rows in memory, written as CSV + JSON, plus a loss / Dice curve PNG.

Rows are dicts with ``iteration`` and ``kind`` (``"train"``: mean loss since the previous row;
``"val"``: validation Dice per class and their foreground mean). The log is part of every
checkpoint, so a resumed run continues the same log. The PNG needs matplotlib (the ``train``
extra); without it the curve is skipped with a warning and the CSV/JSON are still written.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable

from spinect_core.io.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["TrainingLog"]

CSV_NAME = "training_log.csv"
JSON_NAME = "training_log.json"
PNG_NAME = "training_curves.png"


def _clean(value: Any) -> Any:
    """Strict-JSON value: NaN / infinity -> None, numpy scalars -> Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrainingLog:
    """Rows of a training run.

    Parameters
    ----------
    rows : iterable of dict, optional
        Rows to start from (a resumed run's).
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def add(self, *, iteration: int, kind: str, **values: Any) -> dict[str, Any]:
        """Append a row; values are cleaned to strict JSON."""
        row = {"iteration": int(iteration), "kind": str(kind),
               **{k: _clean(v) for k, v in values.items()}}
        self.rows.append(row)
        return row

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        return cols

    def write(self, out_dir: str | os.PathLike, *, plot: bool = True) -> list[Path]:
        """Write ``training_log.csv``, ``training_log.json`` and (if possible) the PNG.

        Returns
        -------
        list of Path
            The files written.
        """
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns(), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
        written = [write_text_atomic(folder / CSV_NAME, buf.getvalue(), overwrite=True),
                   write_text_atomic(folder / JSON_NAME,
                                     json.dumps({"rows": self.rows}, indent=1, allow_nan=False),
                                     overwrite=True)]
        if plot:
            png = self.plot(folder / PNG_NAME)
            if png is not None:
                written.append(png)
        return written

    def plot(self, path: str | os.PathLike) -> Path | None:
        """Loss (left axis, log scale) and validation Dice (right axis) against iteration.

        Returns ``None`` (and logs a warning) when matplotlib is not installed.
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)  # headless; never a GUI backend in the core
            from matplotlib.figure import Figure
        except ImportError:
            log.warning("matplotlib is not installed: skipping the training curve PNG "
                        "(pip install matplotlib)")
            return None
        train = [r for r in self.rows if r["kind"] == "train" and r.get("loss") is not None]
        val = [r for r in self.rows if r["kind"] == "val"]
        fig = Figure(figsize=(8, 4.5), dpi=100)  # Figure(), not pyplot: no global state
        ax = fig.add_subplot(1, 1, 1)
        if train:
            ax.plot([r["iteration"] for r in train], [r["loss"] for r in train],
                    color="tab:blue", label="training loss")
            if all(r["loss"] > 0 for r in train):
                ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        handles, labels = ax.get_legend_handles_labels()
        if val:
            ax2 = ax.twinx()
            keys = [k for k in val[0] if k.startswith("dice_")]
            for k in keys + ["mean_dice"]:
                pts = [(r["iteration"], r[k]) for r in val if r.get(k) is not None]
                if pts:
                    xs, ys = zip(*pts)
                    ax2.plot(xs, ys, marker="o", ms=3,
                             linestyle="-" if k == "mean_dice" else "--",
                             label=f"val {k.replace('_', ' ')}")
            ax2.set_ylim(0, 1)
            ax2.set_ylabel("validation Dice")
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        if handles:
            ax.legend(handles, labels, loc="center right", fontsize=8)
        fig.tight_layout()
        target = Path(path)
        with atomic_path(target, overwrite=True) as tmp:
            fig.savefig(tmp, format="png")
        return target
