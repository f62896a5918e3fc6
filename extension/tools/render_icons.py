"""Render the extension's toolbar and store icons from one SVG source.

Usage: python extension/tools/render_icons.py   (needs cairosvg, in the `test` extra)
Writes extension/icons/icon-{16,32,48,128}.png from extension/icons/icon.svg; commit both.
"""
from __future__ import annotations

from pathlib import Path

import cairosvg

ICONS = Path(__file__).resolve().parents[1] / "icons"
SIZES = (16, 32, 48, 128)  # toolbar 16/32, extensions page 48, both stores 128
VIEWBOX = 'viewBox="0 0 128 128"'
# The Chrome Web Store wants the 128 px icon as 96 px of artwork in 16 px of transparent margin.
STORE_VIEWBOX = 'viewBox="-21.333 -21.333 170.667 170.667"'


def main() -> None:
    source = (ICONS / "icon.svg").read_text()
    if VIEWBOX not in source:
        raise SystemExit(f"{ICONS / 'icon.svg'}: the root element must keep {VIEWBOX}")
    for size in SIZES:
        svg = source.replace(VIEWBOX, STORE_VIEWBOX) if size == 128 else source
        cairosvg.svg2png(bytestring=svg.encode(), write_to=str(ICONS / f"icon-{size}.png"), output_width=size,
                         output_height=size)
        print(f"wrote {ICONS / f'icon-{size}.png'}")


if __name__ == "__main__":
    main()
