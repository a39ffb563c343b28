"""Figures without a plotting library, and `ugosa labels show --plot`: the labels as lanes in a PNG or SVG."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from ugosa_cli.plot import LIGHT, Band, Figure, Line, Rect, Text, source_role

LABELS = "0\t1\tvocals\n0.5\t2\tdrums\n0\t2\tbass\n"  # other unlabelled: unconstrained
SVG = "{http://www.w3.org/2000/svg}"


def _rgb(role: str) -> tuple[int, int, int]:
    value = int(LIGHT[role].lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _where(pixels: np.ndarray, role: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels in a role's colour."""
    return np.nonzero((pixels == _rgb(role)).all(axis=-1))


def test_labels_show_plot_png_draws_a_lane_per_source_over_the_waveform(cli, write_wav, tmp_path):
    song = write_wav(seconds=2.0)
    (tmp_path / "labels.txt").write_text(LABELS)
    result = cli("labels", "show", "labels.txt", "--audio", song, "--plot", "lanes.PNG")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "lanes.PNG\n"
    image = Image.open(tmp_path / "lanes.PNG")
    assert image.format == "PNG" and image.width == 1000
    pixels = np.asarray(image.convert("RGB"))
    assert _where(pixels, "wave")[0].size > 1000  # the waveform
    drums_rows, drums_columns = _where(pixels, source_role(0))
    vocals_rows, vocals_columns = _where(pixels, source_role(3))
    lane = drums_columns > vocals_columns.min() + 20  # leave out the legend's swatch (drums' colour, far left)
    drums_rows, drums_columns = drums_rows[lane], drums_columns[lane]
    assert drums_rows.size and vocals_rows.size and _where(pixels, "free")[0].size  # other: no labels
    assert vocals_rows.min() > drums_rows.max()  # lanes top to bottom in source order
    left, right = drums_columns.min(), drums_columns.max()  # drums play from 0.5 s to the end (2 s)
    plot_left = left - (right - left) / 3
    assert abs(vocals_columns.min() - plot_left) <= 2 and abs(vocals_columns.max() - (plot_left + right) / 2) <= 2


def test_labels_show_plot_svg_is_well_formed_with_one_lane_per_source(cli, tmp_path):
    (tmp_path / "labels.txt").write_text(LABELS)
    result = cli("labels", "show", "labels.txt", "--duration", "2", "--plot", "lanes.svg")
    assert result.exit_code == 0, result.stderr
    root = ET.parse(tmp_path / "lanes.svg").getroot()
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert [name for name in texts if name in ("drums", "bass", "other", "vocals")] == ["drums", "bass", "other",
                                                                                        "vocals"]
    titles = [element.text for element in root.iter(f"{SVG}title")]
    assert "vocals: 0.0s to 1.0s" in titles and "other: no labels, may play anywhere" in titles
    assert not list(root.iter(f"{SVG}polygon"))  # no waveform without --audio


def test_labels_show_plot_refuses_other_extensions_and_the_inputs(cli, tmp_path):
    (tmp_path / "labels.txt").write_text(LABELS)
    for args, message in (
        (("--plot", "lanes.jpg"), "--plot lanes.jpg: name a .png or .svg file"),
        (("--plot", "lanes.svg", "--json"), "--plot and --json: choose one"),
    ):
        result = cli("labels", "show", "labels.txt", *args)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr
    labels_svg = tmp_path / "labels.svg"
    labels_svg.write_text("0\t1\tvocals\n")
    result = cli("labels", "show", labels_svg, "--labels-format", "audacity", "--plot", labels_svg)
    assert result.exit_code == 2 and "refusing to overwrite the labels file" in result.stderr
    assert labels_svg.read_text() == "0\t1\tvocals\n"


def test_names_are_escaped_in_svg_and_drawn_as_question_marks_where_the_png_font_has_no_glyph():
    hostile = '<script>alert("x")</script> & \'q\'\x1b[2J'
    figure = Figure(200, 60, hostile).add(Rect(0, 0, 10, 10, "src0", hostile), Text(10, 40, hostile))
    svg = figure.svg()
    assert "<script>" not in svg and "\x1b" not in svg
    root = ET.fromstring(svg)
    assert root.get("aria-label") == hostile.replace("\x1b", "\\x1b")  # shown, not obeyed
    assert next(root.iter(f"{SVG}text")).text == hostile.replace("\x1b", "\\x1b")

    def drawn(text: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(Figure(60, 30, "").add(Text(5, 20, text)).png())))

    np.testing.assert_array_equal(drawn("é"), drawn("?"))
    assert not np.array_equal(drawn("a"), drawn("?"))


def test_png_and_svg_draw_the_same_shapes():
    band = Band(10, 10, 80, 40, np.array([-0.5, -1.0]), np.array([0.5, 1.0]))
    figure = Figure(100, 60, "shapes").add(band, Line(((0, 55), (99, 55)), "src2", 2), Rect(90, 0, 10, 10, "src1"))
    pixels = np.asarray(Image.open(io.BytesIO(figure.png())))
    rows, columns = _where(pixels, "wave")
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (10, 49, 10, 89)  # the louder half is taller
    assert _where(pixels, "wave")[0][columns < 50].min() == 20
    assert set(_where(pixels, "src2")[0]) == {54, 55} and _where(pixels, "src1")[0].size == 100
    svg = ET.fromstring(figure.svg())
    assert [child.tag.removeprefix(SVG) for child in svg] == ["rect", "polygon", "polyline", "rect"]
