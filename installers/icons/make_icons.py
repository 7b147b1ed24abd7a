"""Draw the SPINECT planner icon (spinect.png 256 px, spinect.ico 16-256 px) with Pillow.

    python installers/icons/make_icons.py

A placeholder until the project has a designed icon in ``assets/icons/`` (the spec and the Linux
tarball prefer ``assets/icons/spinect.png`` / ``.ico`` / ``.icns`` when they exist): a dark tile,
an ivory vertebral body with pedicles and a yellow nerve root, and a needle.
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


def draw(size: int = 256) -> Image.Image:
    s = size / 256.0
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([8 * s, 8 * s, 248 * s, 248 * s], radius=40 * s, fill=(24, 36, 56, 255))
    ivory = (238, 226, 196, 255)
    d.rounded_rectangle([70 * s, 44 * s, 186 * s, 112 * s], radius=18 * s, fill=ivory)  # L5 body
    d.rounded_rectangle([70 * s, 150 * s, 186 * s, 214 * s], radius=18 * s, fill=ivory)  # S1
    d.rectangle([76 * s, 120 * s, 180 * s, 142 * s], fill=(70, 180, 100, 255))            # disc
    d.line([(186 * s, 118 * s), (214 * s, 150 * s), (222 * s, 196 * s)],
           fill=(255, 214, 0, 255), width=max(1, int(12 * s)), joint="curve")          # L5 root
    d.line([(34 * s, 222 * s), (150 * s, 128 * s)], fill=(230, 60, 60, 255),
           width=max(1, int(6 * s)))                                                   # needle
    return img


def main() -> None:
    img = draw(256)
    img.save(HERE / "spinect.png")
    img.save(HERE / "spinect.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64),
                                          (128, 128), (256, 256)])


if __name__ == "__main__":
    main()
