"""Human-readable description of the weights in use (for Settings and About). No Qt."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from spinect_core.errors import SpinectError
from spinect_core.model import ModelCard, default_weights_path, read_model_card

__all__ = ["WeightsInfo", "weights_info", "card_html"]


@dataclass(frozen=True)
class WeightsInfo:
    """The weights a segmentation would use.

    Attributes
    ----------
    path : Path
    card : ModelCard or None
        ``None`` when the file is missing or unreadable (see ``message``).
    message : str
        One line: what is installed or what is wrong.
    """

    path: Path
    card: ModelCard | None
    message: str


def weights_info(weights_path: str) -> WeightsInfo:
    """Describe ``weights_path`` (``""``: the bundled default) without loading tensors."""
    path = Path(weights_path) if weights_path else default_weights_path()
    if not weights_path and not path.is_file():
        return WeightsInfo(path, None, "No trained weights are installed. Choose a weights file "
                                       "(.safetensors) or open an existing segmentation.")
    try:
        card = read_model_card(path)
    except (SpinectError, OSError) as exc:
        return WeightsInfo(path, None, str(exc).splitlines()[0])
    origin = "bundled default" if not weights_path else path.name
    return WeightsInfo(path, card, f"{card.name} {card.version} ({origin})")


def _metrics_text(metrics: dict) -> str:
    """``{"test": {"bone": {"dice": 0.945}}}`` -> ``test: bone dice 0.945``."""
    parts = []
    for split, per_class in metrics.items():
        if isinstance(per_class, dict):
            items = []
            for cls, values in per_class.items():
                if isinstance(values, dict):
                    items.append(f"{cls} " + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, (int, float)) else f"{k} {v}"
                        for k, v in values.items()))
                else:
                    items.append(f"{cls} {values}")
            parts.append(f"{split}: " + "; ".join(items))
        else:
            parts.append(f"{split}: {per_class}")
    return " | ".join(parts) or "none reported"


def card_html(info: WeightsInfo) -> str:
    """Rich text for a label: name, version, labels, spacing, metrics, intended use."""
    e = html.escape
    if info.card is None:
        return f"<p>{e(info.message)}</p>"
    c = info.card
    labels = ", ".join(f"{i} {n}" for i, n in c.labels.names.items())
    rows = [("Name", f"{c.name} {c.version}"), ("Description", c.description or "—"),
            ("Labels", labels),
            ("Patch / spacing", f"{'×'.join(map(str, c.patch_size_zyx))} voxels (z,y,x) at "
                                f"{'×'.join(f'{s:g}' for s in c.spacing_mm)} mm"),
            ("Metrics", _metrics_text(c.metrics)), ("Intended use", c.intended_use),
            ("Created", c.created), ("File", str(info.path))]
    body = "".join(f"<tr><td style='color:#8a949e;padding-right:8px'>{e(k)}</td>"
                   f"<td>{e(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"
