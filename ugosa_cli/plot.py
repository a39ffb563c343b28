"""Figures drawn without a plotting library: rectangles, text, lines and a waveform band, as SVG or PNG.

A :class:`Figure` holds shapes in pixels; each shape has a *role* (``text``, ``wave``, ``src0`` ...) that a palette
turns into a colour. :meth:`Figure.svg` writes a standalone SVG file with the palette's colours, or, with no
palette, an inline SVG whose shapes carry classes (``f-wave`` fills, ``s-src0`` strokes) for a page's style sheet to
colour (light and dark). :meth:`Figure.png` rasterises the same shapes into an RGB PNG (numpy and zlib): shapes
are axis-aligned or thin, so no anti-aliasing is needed, and text is drawn in a built-in 5x8 pixel font (lower-case
letters, digits and the punctuation of times and source names; anything else shows as ``?``).
"""

from __future__ import annotations

import html
import math
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ugosa_cli.safetext import printable

# Colours of the roles on a light background (standalone SVG and PNG); a page's style sheet has its own.
LIGHT: dict[str, str] = {
    "bg": "#ffffff", "text": "#1f2328", "muted": "#6e7781", "grid": "#d8dee4", "lane": "#eef1f4",
    "wave": "#57606a", "rest": "#f6d7d7", "free": "#c9d1d9", "before": "#8c959f",
    "src0": "#d1495b", "src1": "#edae49", "src2": "#00798c", "src3": "#7b4fa6",
    "src4": "#30638e", "src5": "#66a61e", "src6": "#e7298a", "src7": "#a6761d",
}
PLOT_SUFFIXES = (".png", ".svg")  # the files a figure is written as
# ... and on a dark one (the report page in dark mode).
DARK: dict[str, str] = {
    "bg": "#0d1117", "text": "#e6edf3", "muted": "#8b949e", "grid": "#30363d", "lane": "#1c2128",
    "wave": "#adbac7", "rest": "#4d2429", "free": "#3b434d", "before": "#8b949e",
    "src0": "#ff7b8a", "src1": "#f2c46d", "src2": "#3fc1d3", "src3": "#b78cf2",
    "src4": "#6ca6e0", "src5": "#8fd14f", "src6": "#f778ba", "src7": "#d4a55a",
}
SOURCE_ROLES = 8  # source colours: src0 ... src7, in turn


def source_role(index: int) -> str:
    """The colour role of the ``index``-th source."""
    return f"src{index % SOURCE_ROLES}"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    role: str
    title: str | None = None  # a tooltip in SVG
    name: str | None = None  # what it is, for a page's script and tests (``data-name`` in SVG)


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # the baseline
    text: str
    role: str = "text"
    anchor: str = "start"  # start, middle or end
    size: int = 12  # pixels (SVG); the PNG font is 16 pixels tall at every size


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    role: str
    width: float = 1.5
    dashed: bool = False
    name: str | None = None  # what it is, for a page's script and tests (``data-name`` in SVG)


@dataclass(frozen=True)
class Band:
    """A waveform's envelope: ``lows``/``highs`` (one pair per column, in [-1, 1]) over ``x``..``x + width``,
    0 at the middle of ``y``..``y + height``."""

    x: float
    y: float
    width: float
    height: float
    lows: np.ndarray
    highs: np.ndarray
    role: str = "wave"


Shape = Rect | Text | Line | Band


@dataclass
class Figure:
    """Shapes on a ``width`` x ``height`` pixel canvas; ``label`` describes it (SVG ``aria-label``); ``axis``: where
    its time axis runs, (left x, right x, seconds), written on an SVG as ``data-x0``, ``data-x1``, ``data-seconds``."""

    width: int
    height: int
    label: str
    shapes: list[Shape] = field(default_factory=list)
    axis: tuple[float, float, float] | None = None

    def add(self, *shapes: Shape) -> Figure:
        self.shapes.extend(shapes)
        return self

    # ---------------------------------------------------------------- SVG

    def svg(self, palette: Mapping[str, str] | None = LIGHT, attributes: Mapping[str, str] | None = None) -> str:
        """The figure as SVG: a standalone file coloured by ``palette``, or (``palette=None``) an inline element
        whose shapes carry classes for a page to colour. ``attributes``: more attributes of the ``svg`` element
        (values escaped here)."""
        def paint(kind: str, role: str) -> str:
            if palette is None:
                return f'class="{kind}-{role}"'
            colour = palette.get(role, palette["text"])
            return f'{"fill" if kind == "f" else "stroke"}="{colour}"' + (' fill="none"' if kind == "s" else "")

        attributes = dict(attributes or {})
        if self.axis is not None:
            attributes.update(zip(("data-x0", "data-x1", "data-seconds"), (f"{v:.6g}" for v in self.axis)))
        extra = "".join(f' {name}="{escape(value)}"' for name, value in attributes.items())
        head = f'<svg viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{escape(self.label)}"{extra}'
        if palette is not None:  # a file of its own: the namespace, a size and a font
            head = (head.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
                    + f' width="{self.width}" height="{self.height}" font-family="sans-serif"')
        parts = [head + ">"]
        if palette is not None:
            parts.append(f'<rect width="{self.width}" height="{self.height}" fill="{palette["bg"]}"/>')
        for shape in self.shapes:
            parts.append(_svg_shape(shape, paint))
        parts.append("</svg>")
        return "\n".join(parts) + "\n"

    def encode(self, suffix: str) -> bytes:
        """The figure as the file a name ending in ``suffix`` (:data:`PLOT_SUFFIXES`, any case) calls for."""
        kind = suffix.lower()
        if kind not in PLOT_SUFFIXES:
            raise ValueError(f"no figure format for {suffix!r}: use one of {', '.join(PLOT_SUFFIXES)}")
        return self.png() if kind == ".png" else self.svg().encode("utf-8")

    # ---------------------------------------------------------------- PNG

    def png(self, palette: Mapping[str, str] = LIGHT) -> bytes:
        """The figure as an 8-bit RGB PNG."""
        canvas = np.empty((self.height, self.width, 3), np.uint8)
        canvas[:] = _rgb(palette["bg"])
        for shape in self.shapes:
            colour = _rgb(palette.get(shape.role, palette["text"]))
            if isinstance(shape, Rect):
                _fill(canvas, shape.x, shape.y, shape.x + shape.width, shape.y + shape.height, colour)
            elif isinstance(shape, Text):
                _draw_text(canvas, shape, colour)
            elif isinstance(shape, Line):
                _draw_line(canvas, shape, colour)
            else:
                for x0, x1, low, high in _band_columns(shape):
                    _fill(canvas, x0, high, max(x1, x0 + 1), max(low, high + 1), colour)
        return encode_png(canvas)


def escape(value: str) -> str:
    """Text read from a file made safe inside an XML or HTML element or quoted attribute: markup characters and
    quotes escaped, control characters and bidi overrides shown as escapes (:func:`~ugosa_cli.safetext.printable`)."""
    return html.escape(printable(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg_shape(shape: Shape, paint: Callable[[str, str], str]) -> str:
    if isinstance(shape, Rect):
        title = f"<title>{escape(shape.title)}</title>" if shape.title else ""
        name = f' data-name="{escape(shape.name)}"' if shape.name else ""
        body = (f'<rect x="{_num(shape.x)}" y="{_num(shape.y)}" width="{_num(shape.width)}" '
                f'height="{_num(shape.height)}" {paint("f", shape.role)}{name}')
        return f"{body}>{title}</rect>" if title else body + "/>"
    if isinstance(shape, Text):
        return (f'<text x="{_num(shape.x)}" y="{_num(shape.y)}" font-size="{shape.size}" text-anchor="{shape.anchor}" '
                f'{paint("f", shape.role)}>{escape(shape.text)}</text>')
    if isinstance(shape, Line):
        points = " ".join(f"{_num(x)},{_num(y)}" for x, y in shape.points)
        dash = ' stroke-dasharray="4 3"' if shape.dashed else ""
        name = f' data-name="{escape(shape.name)}"' if shape.name else ""
        return (f'<polyline points="{points}" {paint("s", shape.role)} stroke-width="{_num(shape.width)}"'
                f' stroke-linejoin="round"{dash}{name}/>')
    columns = list(_band_columns(shape))
    top = " ".join(f"{_num(x0)},{_num(high)} {_num(x1)},{_num(high)}" for x0, x1, _, high in columns)
    bottom = " ".join(f"{_num(x1)},{_num(low)} {_num(x0)},{_num(low)}" for x0, x1, low, _ in reversed(columns))
    return f'<polygon points="{top} {bottom}" {paint("f", shape.role)}/>'


def _band_columns(band: Band) -> list[tuple[float, float, float, float]]:
    """(x0, x1, y of the low, y of the high) of each column of a band."""
    count = len(band.lows)
    middle, half = band.y + band.height / 2, band.height / 2
    step = band.width / max(count, 1)
    return [(band.x + i * step, band.x + (i + 1) * step, middle - float(np.clip(low, -1, 1)) * half,
             middle - float(np.clip(high, -1, 1)) * half) for i, (low, high) in enumerate(zip(band.lows, band.highs))]


def _rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _fill(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: tuple[int, int, int]) -> None:
    height, width = canvas.shape[:2]
    left, right = max(0, round(x0)), min(width, round(x1))
    top, bottom = max(0, round(y0)), min(height, round(y1))
    if left < right and top < bottom:
        canvas[top:bottom, left:right] = colour


def _draw_line(canvas: np.ndarray, line: Line, colour: tuple[int, int, int]) -> None:
    """A polyline as squares of the line's width stepped along each segment (half a pixel at a time)."""
    size = max(1, round(line.width))
    points = np.asarray(line.points, dtype=np.float64)
    for index, ((x0, y0), (x1, y1)) in enumerate(zip(points[:-1], points[1:])):
        if line.dashed and index % 2:
            continue
        count = int(math.ceil(max(abs(x1 - x0), abs(y1 - y0)) * 2)) + 1
        for t in np.linspace(0.0, 1.0, count):
            x, y = x0 + (x1 - x0) * t - size / 2, y0 + (y1 - y0) * t - size / 2
            _fill(canvas, x, y, x + size, y + size, colour)


# ---------------------------------------------------------------- the PNG font

_GLYPH_ROWS = 8  # 5 columns by 8 rows: 7 above the baseline, 1 below (g, j, p, q, y, _ and ,)
_SCALE = 2  # each font pixel is 2x2 image pixels: 10x16 per character, 12 pixels apart
_ADVANCE = 6 * _SCALE
_FONT_SOURCE = {
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.", "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####", "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.", "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.", "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.", "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "a": ".....|.....|.###.|....#|.####|#...#|.####", "b": "#....|#....|#.##.|##..#|#...#|#...#|####.",
    "c": ".....|.....|.###.|#....|#....|#...#|.###.", "d": "....#|....#|.##.#|#..##|#...#|#...#|.####",
    "e": ".....|.....|.###.|#...#|#####|#....|.###.", "f": "..##.|.#..#|.#...|###..|.#...|.#...|.#...",
    "g": ".....|.....|.####|#...#|#...#|.####|....#|.###.", "h": "#....|#....|#.##.|##..#|#...#|#...#|#...#",
    "i": "..#..|.....|.##..|..#..|..#..|..#..|.###.", "j": "...#.|.....|..##.|...#.|...#.|...#.|#..#.|.##..",
    "k": "#....|#....|#..#.|#.#..|##...|#.#..|#..#.", "l": ".##..|..#..|..#..|..#..|..#..|..#..|.###.",
    "m": ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#", "n": ".....|.....|#.##.|##..#|#...#|#...#|#...#",
    "o": ".....|.....|.###.|#...#|#...#|#...#|.###.", "p": ".....|.....|####.|#...#|#...#|####.|#....|#....",
    "q": ".....|.....|.##.#|#..##|#...#|.####|....#|....#", "r": ".....|.....|#.##.|##..#|#....|#....|#....",
    "s": ".....|.....|.###.|#....|.###.|....#|####.", "t": ".#...|.#...|###..|.#...|.#...|.#..#|..##.",
    "u": ".....|.....|#...#|#...#|#...#|#..##|.##.#", "v": ".....|.....|#...#|#...#|#...#|.#.#.|..#..",
    "w": ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.", "x": ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
    "y": ".....|.....|#...#|#...#|#...#|.####|....#|.###.", "z": ".....|.....|#####|...#.|..#..|.#...|#####",
    " ": ".....", ".": ".....|.....|.....|.....|.....|.##..|.##..", ":": ".....|.##..|.##..|.....|.##..|.##..",
    "-": ".....|.....|.....|#####", "_": ".....|.....|.....|.....|.....|.....|.....|#####",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.", ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
    "/": "....#|...#.|...#.|..#..|.#...|.#...|#....", ",": ".....|.....|.....|.....|.....|.##..|..#..|.#...",
    "%": "##..#|##.#.|...#.|..#..|.#...|.#.##|#..##", "+": ".....|..#..|..#..|#####|..#..|..#..",
    "?": ".###.|#...#|....#|...#.|..#..|.....|..#..", "=": ".....|.....|#####|.....|#####",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.", ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
}


def _glyph(rows: str) -> np.ndarray:
    lines = rows.split("|")
    mask = np.zeros((_GLYPH_ROWS, 5), bool)
    for index, line in enumerate(lines):
        mask[index] = [c == "#" for c in line]
    return np.kron(mask, np.ones((_SCALE, _SCALE), bool))


FONT: dict[str, np.ndarray] = {char: _glyph(rows) for char, rows in _FONT_SOURCE.items()}


def text_width(text: str) -> int:
    """The width of ``text`` in the PNG font, in pixels."""
    return max(0, len(text) * _ADVANCE - _SCALE)


def _draw_text(canvas: np.ndarray, text: Text, colour: tuple[int, int, int]) -> None:
    width = text_width(text.text)
    x = round(text.x - {"start": 0, "middle": width / 2, "end": width}[text.anchor])
    top = round(text.y) - 7 * _SCALE
    for char in text.text.lower():
        mask = FONT.get(char, FONT["?"])
        height, glyph_width = mask.shape
        y0, x0 = max(0, top), max(0, x)
        y1, x1 = min(canvas.shape[0], top + height), min(canvas.shape[1], x + glyph_width)
        if y0 < y1 and x0 < x1:
            region = canvas[y0:y1, x0:x1]
            region[mask[y0 - top : y1 - top, x0 - x : x1 - x]] = colour
        x += _ADVANCE


def encode_png(canvas: np.ndarray) -> bytes:
    """An (height, width, 3) uint8 RGB image as PNG bytes (8-bit truecolour, no filter, zlib level 6)."""
    height, width, _ = canvas.shape
    raw = np.concatenate([np.zeros((height, 1), np.uint8), canvas.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))


__all__ = [
    "DARK", "LIGHT", "PLOT_SUFFIXES", "Band", "Figure", "Line", "Rect", "Text", "encode_png", "escape", "source_role",
    "text_width",
]
