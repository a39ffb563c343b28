"""Activation labels: real-world-shaped files, semantics, the matrix and exact round trips."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ugosa_cli.errors import InputError
from ugosa_cli.labels import (
    LABEL_FORMATS,
    Labels,
    activation_matrix,
    format_labels,
    guard_silences,
    labels_from_matrix,
    labels_from_regions,
    labels_json,
    parse_labels,
    parse_time,
    read_labels,
    source_for_name,
)

SOURCES = ("drums", "bass", "other", "vocals")


def parse(text: str, **kw) -> Labels:
    return parse_labels(text, origin="labels.txt", **kw)


# ---------------------------------------------------------------- real-world files


AUDACITY_EXPORT = (
    "\ufeff0.000000\t12.500000\tDrums \r\n"
    "\\\t0.000000\t22050.000000\r\n"
    "10.000000\t20.000000\t Lead Vocal\r\n"
    "\\\t120.000000\t5000.000000\r\n"
    "15.500000\t30.000000\tdrums\r\n"
    "\r\n"
    "40.000000\t55.250000\tBass Guitar\r\n"
)


def test_audacity_export_with_frequency_lines_crlf_bom_and_mixed_case():
    labels = parse(AUDACITY_EXPORT)
    assert labels.regions["drums"] == ((0.0, 12.5), (15.5, 30.0))
    assert labels.regions["vocals"] == ((10.0, 20.0),)
    assert labels.regions["bass"] == ((40.0, 55.25),)
    assert labels.unconstrained == ("other",)
    assert labels.duration is None
    assert any("other" in w and "unconstrained" in w for w in labels.warnings)


def test_spreadsheet_csv_with_semicolons_bom_decimal_commas_and_clock_times(tmp_path):
    path = tmp_path / "regions.csv"
    text = "Onset;Offset;Instrument\r\n0:05,5;0:10;Vocals\r\n1:00;1:30.25;perc\r\n0:00:02;0:00:04;VOX\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    labels = read_labels(path)
    assert labels.regions["vocals"] == ((2.0, 4.0), (5.5, 10.0))
    assert labels.regions["drums"] == ((60.0, 90.25),)
    assert set(labels.unconstrained) == {"bass", "other"}


def test_excel_exports_in_utf16_and_windows_1252_are_read(tmp_path):
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("start\tend\tlabel\r\n1\t2\tvocals\r\n".encode("utf-16"))
    assert read_labels(utf16).regions["vocals"] == ((1.0, 2.0),)
    cp1252 = tmp_path / "cp1252.csv"
    cp1252.write_bytes("start,end,label,note\n1,2,vocals,caf\xe9\n".encode("cp1252"))
    assert read_labels(cp1252).regions["vocals"] == ((1.0, 2.0),)


@pytest.mark.parametrize(
    "text",
    [
        "start,end,label\n1,3,vocals\n",
        "Start Time (s),End Time (s),Source\n1,3,vocals\n",
        "begin\tstop\tstem\n1\t3\tvocals\n",
        "from;to;name\n1;3;vocals\n",
        "time,duration,label,comment\n1,2,vocals,verse\n",
        "label,onset,length\nvocals,1,2\n",
        "1,3,vocals\n",
        "# my labels\n1 3 vocals\n",
        '"start","end","label"\n"1","3","vocals"\n',
    ],
)
def test_tables_with_loosely_named_columns(text):
    assert parse(text).regions["vocals"] == ((1.0, 3.0),)


def test_header_without_the_needed_columns_is_a_clear_error():
    with pytest.raises(InputError, match=r"labels.txt line 1: .*no end \(or duration\) column"):
        parse("start,label\n1,vocals\n")


@pytest.mark.parametrize(
    "text, line, value",
    [
        ("abc\t2\tvocals\n3\t4\tdrums\n", 1, "abc"),
        ("abc,2,vocals\n", 1, "abc"),
        ("12s;15s;vocals\n", 1, "12s"),
        ("1:2x\t2\tvocals\n", 1, "1:2x"),
        ("start,end,label\nabc,2,vocals\n", 2, "abc"),
    ],
)
def test_a_start_that_is_not_a_time_is_named_with_its_line_not_blamed_on_a_header(text, line, value):
    with pytest.raises(InputError) as caught:
        parse(text)
    assert f"labels.txt line {line} start: {value!r} is not a time" in caught.value.message
    assert "header" not in caught.value.message


def test_a_first_line_of_words_is_still_read_as_a_header():
    with pytest.raises(InputError, match=r"line 1: the header 'a, b, c' has no start"):
        parse("a,b,c\n1,2,vocals\n")
    assert parse("from,to,instrument\n1,2,vocals\n").regions["vocals"] == ((1.0, 2.0),)


def test_frame_table_with_probabilities_holds_each_row_until_the_next_and_the_last_to_the_end():
    text = "time,drums,vocals\n0.0,0.1,0.9\n0.5,0.7,0.2\n1.0,0.5,0.0\n1.5,0.2,1\n"
    labels = parse(text, duration=3.0)
    assert labels.regions["drums"] == ((0.5, 1.5),)
    assert labels.regions["vocals"] == ((0.0, 0.5), (1.5, 3.0))
    assert labels.unconstrained == ("bass", "other")


def test_frame_table_errors_name_the_line():
    with pytest.raises(InputError, match="line 3: '2' is not an activity"):
        parse("time,vocals\n0,1\n1,2\n")
    with pytest.raises(InputError, match="line 3: time 0.5 does not come after"):
        parse("time,vocals\n1,1\n0.5,0\n")


def test_json_input_with_open_end_and_explicit_unconstrained():
    text = json.dumps(
        {"duration": None, "sources": {"vocals": [[1, None]], "drums": [], "bass": [[0, 2]]}, "unconstrained": ["bass"]}
    )
    labels = parse(text)
    assert labels.regions["vocals"] == ((1.0, math.inf),)
    assert labels.regions["drums"] == ()
    assert labels.unconstrained == ("bass", "other")
    assert labels_json(labels)["sources"]["vocals"] == [[1.0, None]]


# ---------------------------------------------------------------- times and names


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("12.5", 12.5), ("12,5", 12.5), ("7", 7.0), (".5", 0.5), ("1:02.5", 62.5), ("01:02:03.25", 3723.25),
     ("90:00", 5400.0), (" 3 ", 3.0), ("0.1234567", 0.123457)],
)
def test_parse_time(text, seconds):
    assert parse_time(text, where="x") == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:60", "1:61:00", "1e3", "nan", "inf", "1:2:3:4", "--1", "1.2.3"])
def test_parse_time_rejects(text):
    with pytest.raises(InputError, match="^here: "):
        parse_time(text, where="here")


def test_negative_time_is_an_error_with_the_line_number():
    with pytest.raises(InputError, match=r"labels.txt line 2 start: negative time '-1.5'"):
        parse("0\t1\tvocals\n-1.5\t2\tdrums\n")


def test_end_before_start_is_an_error_with_the_line_number():
    with pytest.raises(InputError, match=r"labels.txt line 1: the region ends \(3 s\) before it starts \(5 s\)"):
        parse("5\t3\tvocals\n")


def test_empty_label_text_is_an_error():
    with pytest.raises(InputError, match="line 1: the label has no text"):
        parse("1.000000\t2.000000\t\n")


@pytest.mark.parametrize(
    ("word", "source"),
    [("Vocals", "vocals"), ("voice", "vocals"), ("VOX", "vocals"), ("singing", "vocals"), ("lead_vocal", "vocals"),
     ("Vocals (chorus)", "vocals"), ("vocals 2", "vocals"), ("drum", "drums"), ("Percussion", "drums"),
     ("kit", "drums"), ("bass guitar", "bass"), ("Bassline", "bass"), ("others", "other"), ("guitar", None),
     ("no vocals", None)],
)
def test_source_names_and_synonyms(word, source):
    assert source_for_name(word) == source


def test_several_sources_in_one_label_and_user_mapping():
    labels = parse("0\t4\tdrums + bass\n2\t6\tGuitar & keys\n", mapping={"guitar": "other", "keys": "other"})
    assert labels.regions["drums"] == labels.regions["bass"] == ((0.0, 4.0),)
    assert labels.regions["other"] == ((2.0, 6.0),)


def test_unknown_name_error_names_file_line_and_word_and_lists_what_is_accepted():
    with pytest.raises(InputError) as caught:
        parse("0\t1\tvocals\n1\t2\tTheremin\n")
    message = caught.value.message
    assert message.startswith("labels.txt line 2: unknown source 'Theremin'")
    assert "drums, bass, other, vocals" in message
    assert "--map 'Theremin=other'" in message and "--ignore-unknown" in message


def test_ignore_unknown_skips_with_a_warning():
    labels = parse("0\t1\tvocals\n1\t2\tTheremin\n", ignore_unknown=True)
    assert labels.regions["vocals"] == ((0.0, 1.0),)
    assert any("theremin" in w and "line 2" in w for w in labels.warnings)


def test_mapping_to_an_unknown_source_is_an_error():
    with pytest.raises(InputError, match="--map guitar=piano"):
        parse("0\t1\tguitar\n", mapping={"guitar": "piano"})


def test_other_source_sets_use_their_own_names():
    labels = parse("0\t1\tpiano\n1\t2\tvox\n", sources=("piano", "vocals"))
    assert labels.regions == {"piano": ((0.0, 1.0),), "vocals": ((1.0, 2.0),)}


# ---------------------------------------------------------------- semantics


def test_overlapping_and_touching_regions_merge():
    labels = parse("0\t5\tvocals\n3\t8\tvocals\n8\t9\tvocals\n20\t21\tvocals\n")
    assert labels.regions["vocals"] == ((0.0, 9.0), (20.0, 21.0))


def test_only_negative_labels_mean_active_everywhere_else():
    labels = parse("10\t20\tno vocals\n30\t40\t!vocals\n", duration=60)
    assert labels.regions["vocals"] == ((0.0, 10.0), (20.0, 30.0), (40.0, 60.0))
    open_ended = parse("10\t20\t-vocals\n")
    assert open_ended.regions["vocals"] == ((0.0, 10.0), (20.0, math.inf))


def test_positive_minus_negative():
    labels = parse("0\t30\tvocals\n10\t12\tno vocals\n")
    assert labels.regions["vocals"] == ((0.0, 10.0), (12.0, 30.0))


def test_margin_widens_active_regions_and_narrows_silences():
    labels = parse("1\t2\tvocals\n5\t6\tvocals\n10\t20\tno drums\n", margin=0.5, duration=30)
    assert labels.regions["vocals"] == ((0.5, 2.5), (4.5, 6.5))
    assert labels.regions["drums"] == ((0.0, 10.5), (19.5, 30.0))


def test_the_filter_guard_shortens_each_silence_at_its_borders_by_at_most_a_quarter():
    labels = parse("0\t4\tvocals\n6\t10\tvocals\n2\t10\tdrums\n0\t1\tbass\n9\t10\tbass\n", duration=10)
    guarded = guard_silences(labels, 0.5)
    assert guarded.regions["vocals"] == ((0.0, 4.5), (5.5, 10.0))  # a 2 s rest keeps its middle 1 s
    assert guarded.regions["drums"] == ((1.5, 10.0),)  # the song's start is no border
    assert guarded.regions["bass"] == ((0.0, 1.5), (8.5, 10.0))
    assert guarded.regions["other"] == ((0.0, 10.0),) and guarded.unconstrained == ("other",)
    short = guard_silences(parse("0\t3\tvocals\n3.8\t10\tvocals\n", duration=10), 1.0)
    assert short.regions["vocals"] == ((0.0, 3.2), (3.6, 10.0))  # a 0.8 s rest loses 0.2 s at each end, not all
    assert guard_silences(labels, 0) is labels


def test_regions_past_the_end_are_clipped_with_a_warning():
    labels = parse("0\t5\tvocals\n8\t12\tvocals\n15\t18\tdrums\n", duration=10)
    assert labels.regions["vocals"] == ((0.0, 5.0), (8.0, 10.0))
    assert labels.regions["drums"] == ()
    warning = next(w for w in labels.warnings if "past the end" in w)
    assert "2 region(s)" in warning and "line 2, line 3" in warning


def test_point_labels_are_ignored_with_a_warning():
    labels = parse("3\t3\tvocals\n1\t2\tdrums\n")
    assert "vocals" in labels.unconstrained
    assert any("point label" in w and "line 1" in w for w in labels.warnings)


def test_unconstrained_sources_in_json_cover_the_duration():
    labels = parse("1\t2\tvocals\n", duration=10)
    assert labels_json(labels) == {
        "duration": 10.0,
        "sources": {"drums": [[0.0, 10.0]], "bass": [[0.0, 10.0]], "other": [[0.0, 10.0]], "vocals": [[1.0, 2.0]]},
        "unconstrained": ["drums", "bass", "other"],
    }
    assert labels_json(parse("1\t2\tvocals\n"))["sources"]["drums"] == []


def test_empty_file_leaves_everything_unconstrained_with_a_warning():
    labels = parse("\ufeff\r\n# nothing yet\r\n")
    assert labels.unconstrained == SOURCES
    assert any("no labels found" in w for w in labels.warnings)


def test_read_labels_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1\t2\tvocals\n")))
    labels = read_labels("-")
    assert labels.regions["vocals"] == ((1.0, 2.0),)


def test_read_labels_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_labels(tmp_path / "nope.txt")


# ---------------------------------------------------------------- matrix


def test_activation_matrix_samples_and_unconstrained_rows():
    labels = parse("0.25\t0.5\tvocals\n0.75\tend\tdrums\n")
    matrix = activation_matrix(labels, 8, 8)
    assert matrix.dtype == np.float32 and matrix.shape == (4, 8)
    assert matrix[3].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    assert matrix[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert matrix[1].tolist() == matrix[2].tolist() == [1] * 8


def test_labels_from_matrix_gives_regions_in_seconds():
    matrix = np.zeros((4, 10), dtype=np.float32)
    matrix[3, 2:5] = 1
    matrix[0, 7:] = 1
    labels = labels_from_matrix(matrix, 10)
    assert labels.regions == {"drums": ((0.7, 1.0),), "bass": (), "other": (), "vocals": ((0.2, 0.5),)}
    assert labels.duration == 1.0 and labels.unconstrained == ()


# ---------------------------------------------------------------- properties

rates = st.sampled_from([8000, 22050, 44100, 48000, 96000, 192000, 7, 1000])


@st.composite
def binary_matrices(draw):
    frames = draw(st.integers(1, 400))
    rows = []
    for _ in SOURCES:
        flips = sorted(draw(st.sets(st.integers(0, frames), max_size=8)))
        row = np.zeros(frames, dtype=np.float32)
        for a, b in zip(flips[::2], flips[1::2] + [frames]):
            row[a:b] = 1
        rows.append(row)
    return np.stack(rows)


@settings(max_examples=150, deadline=None)
@given(matrix=binary_matrices(), rate=rates, fmt=st.sampled_from(LABEL_FORMATS))
def test_matrix_regions_format_parse_round_trip_is_exact(matrix, rate, fmt):
    labels = labels_from_matrix(matrix, rate)
    assert np.array_equal(activation_matrix(labels, rate, matrix.shape[1]), matrix)
    again = parse_labels(format_labels(labels, fmt), origin="x", duration=labels.duration)
    assert again.regions == labels.regions
    assert again.unconstrained == labels.unconstrained
    assert np.array_equal(activation_matrix(again, rate, matrix.shape[1]), matrix)


times = st.integers(0, 10**9).map(lambda us: us / 1e6)


@st.composite
def region_labels(draw):
    duration = draw(st.one_of(st.none(), st.integers(1, 2 * 10**9).map(lambda us: us / 1e6)))
    regions = {}
    for source in SOURCES:
        kind = draw(st.sampled_from(["free", "spans", "spans", "open"]))
        if kind == "free":
            continue
        spans = [tuple(sorted(draw(st.tuples(times, times)))) for _ in range(draw(st.integers(0, 5)))]
        if kind == "open":
            spans.append((draw(times), math.inf))
        regions[source] = spans
    return labels_from_regions(regions, duration=duration)


@pytest.mark.slow  # over a second: CI runs it
@settings(max_examples=200, deadline=None)
@given(labels=region_labels(), fmt=st.sampled_from(LABEL_FORMATS))
def test_every_format_reads_back_what_it_wrote(labels, fmt):
    again = parse_labels(format_labels(labels, fmt), origin="x", duration=labels.duration)
    assert (again.regions, again.unconstrained, again.duration) == (labels.regions, labels.unconstrained, labels.duration)


@pytest.mark.slow  # over a second: CI runs it
@settings(max_examples=200, deadline=None)
@given(labels=region_labels(), rate=rates)
def test_matrix_of_parsed_labels_inverts_exactly(labels, rate):
    frames = 300
    matrix = activation_matrix(labels, rate, frames)
    assert np.array_equal(activation_matrix(labels_from_matrix(matrix, rate), rate, frames), matrix)


label_words = st.sampled_from(
    ["vocals", "no vocals", "Drums", "!bass", "-other", "vox", "guitar", "", "end", "x+y", "1:2", "\\", "#", '"']
)
field = st.one_of(
    label_words, st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-5, 10**6).map(str), st.sampled_from(["1:02", "1:02:03,5", "59:60", "-0", "1e400", "9" * 5000])
)
line = st.tuples(st.lists(field, max_size=5), st.sampled_from(["\t", ",", ";", " "])).map(lambda p: p[1].join(p[0]))
documents = st.one_of(
    st.text(max_size=300),
    st.lists(line, max_size=8).map("\r\n".join),
    st.lists(line, max_size=8).map(lambda lines: "time,vocals,drums\n" + "\n".join(lines)),
    st.lists(line, max_size=8).map(lambda lines: "start;end;label\n" + "\n".join(lines)),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), label_words),
                 lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(label_words, inner, max_size=3)),
                 max_leaves=12).map(lambda value: json.dumps({"sources": value, "duration": 3})),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents, fmt=st.sampled_from([None, *LABEL_FORMATS]), duration=st.sampled_from([None, 5.0]),
       margin=st.sampled_from([0.0, 0.3]), ignore=st.booleans())
@pytest.mark.slow  # among the slowest: CI runs it
def test_no_input_crashes_the_parser_with_anything_but_input_error(text, fmt, duration, margin, ignore):
    try:
        labels = parse_labels(text, origin="fuzz", fmt=fmt, duration=duration, margin=margin, ignore_unknown=ignore)
    except InputError as exc:
        assert exc.message.strip() and "\n" not in exc.message
        return
    assert labels.sources == SOURCES
    for spans in labels.regions.values():
        assert all(0 <= a < b for a, b in spans)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
        if labels.duration is not None:
            assert all(b <= labels.duration for _, b in spans)


SIX = ("drums", "bass", "other", "vocals", "guitar", "piano")


@pytest.mark.parametrize("word, source", [("gtr", "guitar"), ("Electric Guitar", "guitar"), ("acoustic guitar", "guitar"),
                                          ("keys", "piano"), ("pno", "piano"), ("Piano", "piano"),
                                          ("bass guitar", "bass")])
def test_six_source_models_take_guitar_and_piano_words(word, source):
    labels = parse_labels(f"0\t1\t{word}\n", origin="l.txt", sources=SIX, duration=2.0)
    assert labels.regions[source] == ((0.0, 1.0),)


def test_guitar_with_a_four_source_model_suggests_mapping_it_to_other():
    with pytest.raises(InputError, match=r"unknown source 'guitar'.*--map 'guitar=other'"):
        parse_labels("0\t1\tguitar\n", origin="l.txt", duration=2.0)
