#!/usr/bin/env python3
"""Check a screenshot of the planner window from a smoke run.

    python installers/check_screenshot.py out.png [--json]

Passes (exit 0) when the file is a PNG of a plausible window: at least 400x300 pixels, not a flat
image (>= 256 distinct colours), with enough pixels in the colour of bone (ivory, the 3D surfaces and
the CT slices' legend) and of nerve (saturated yellow, roots in 3D and the 2D overlay). Colours are
classified by hue / saturation / value so that lighting and shading of the 3D surfaces do not matter.
Exit 1 with one line per failed check otherwise. Needs only numpy and Pillow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

#: Minimum size of the window grab (pixels).
MIN_WIDTH, MIN_HEIGHT = 400, 300
#: A blank or single-colour grab has a handful of colours; a rendered window has thousands.
MIN_COLOURS = 256
#: Bone ivory (238, 226, 196) shaded: hue 25-55 deg, low saturation, not dark. The 2D CT views
#: alone give ~2 % of such pixels; with the 3D bone surfaces shown it is ~10 % of the window.
MIN_BONE_FRACTION = 0.05
#: Nerve yellow (255, 214, 0) shaded: hue 40-62 deg, saturated, bright.
MIN_NERVE_PIXELS = 200


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in degrees, saturation and value in [0, 1] of an (H, W, 3) float RGB image in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = rgb.max(axis=-1)
    mn = rgb.min(axis=-1)
    delta = np.maximum(mx - mn, 1e-6)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    hue = np.where(mx == r, ((g - b) / delta) % 6.0,
                   np.where(mx == g, (b - r) / delta + 2.0, (r - g) / delta + 4.0)) * 60.0
    hue = np.where(mx - mn < 1e-6, 0.0, hue)
    return hue, sat, mx


def analyse(path: str | Path) -> dict:
    """Measure the screenshot; returns a dict with the numbers and ``ok`` / ``failures``."""
    from PIL import Image

    path = Path(path)
    result: dict = {"path": str(path), "ok": False, "failures": []}
    if not path.is_file():
        result["failures"].append(f"{path} does not exist")
        return result
    result["bytes"] = path.stat().st_size
    try:
        with Image.open(path) as img:
            fmt = img.format
            rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except Exception as exc:  # noqa: BLE001 - any decoding error is a failed check
        result["failures"].append(f"cannot read {path} as an image: {exc}")
        return result
    height, width = rgb.shape[:2]
    result.update(format=fmt, width=width, height=height)
    if fmt != "PNG":
        result["failures"].append(f"format is {fmt}, expected PNG")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        result["failures"].append(f"{width}x{height} is smaller than {MIN_WIDTH}x{MIN_HEIGHT}")
    quantised = (rgb * 255.0 + 0.5).astype(np.uint8).reshape(-1, 3)
    colours = int(len(np.unique(quantised[:, 0].astype(np.uint32) << 16
                                | quantised[:, 1].astype(np.uint32) << 8
                                | quantised[:, 2].astype(np.uint32))))
    result["colours"] = colours
    if colours < MIN_COLOURS:
        result["failures"].append(f"only {colours} distinct colours (blank window?)")
    hue, sat, val = _hsv(rgb)
    bone = (hue >= 25) & (hue <= 55) & (sat >= 0.08) & (sat <= 0.35) & (val >= 0.3)
    nerve = (hue >= 40) & (hue <= 62) & (sat >= 0.6) & (val >= 0.45)
    result["bone_fraction"] = round(float(bone.mean()), 5)
    result["nerve_pixels"] = int(nerve.sum())
    if result["bone_fraction"] < MIN_BONE_FRACTION:
        result["failures"].append(f"bone colour covers {result['bone_fraction']:.4f} of the image "
                                  f"(< {MIN_BONE_FRACTION})")
    if result["nerve_pixels"] < MIN_NERVE_PIXELS:
        result["failures"].append(f"{result['nerve_pixels']} nerve-coloured pixels "
                                  f"(< {MIN_NERVE_PIXELS})")
    result["ok"] = not result["failures"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1].strip())
    parser.add_argument("png", help="screenshot to check")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = parser.parse_args(argv)
    result = analyse(args.png)
    if args.json:
        print(json.dumps(result, indent=2))
    elif result["ok"]:
        print(f"screenshot OK: {result['width']}x{result['height']}, {result['colours']} colours, "
              f"bone {100 * result['bone_fraction']:.1f} %, nerve {result['nerve_pixels']} px")
    for failure in result["failures"]:
        print(f"screenshot check failed: {failure}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
