"""The report page (`--report` on separate, adapt and filter): what it measures, that it is self-contained and
escapes every name, and that a real browser shows it (Chromium, headless; skipped where it is not installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from ugosa_cli.errors import InputError
from ugosa_cli.labels import labels_from_regions
from ugosa_cli.plot import DARK
from ugosa_cli.report import (
    Envelope,
    Levels,
    Player,
    SongReport,
    adaptation_html,
    relative_href,
    render_report,
    report_pages,
)

RATE = 8000
LABELS = "0\t1\tvocals\n0.5\t2\tdrums\n0\t2\tbass\n0\t2\tother\n"
HOSTILE = '<script>alert("x")</script> & \'quoted\' \x07\u202e'
SHOWN = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quoted&#x27; \\x07\\u202e"


def _sine(seconds: float, amplitude: float, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_levels_and_envelope_do_not_depend_on_block_sizes_and_measure_rms():
    quiet, loud = _sine(1.0, 0.01), _sine(1.0, 0.5)
    stems = np.stack([np.stack([np.concatenate([quiet, loud])] * 2), np.zeros((2, 2 * RATE), np.float32)])
    results = []
    for size in (RATE * 2, 1000, 77):
        levels, envelope = Levels(("a", "b"), RATE, 2 * RATE), Envelope(2 * RATE, RATE, columns=50)
        for start in range(0, 2 * RATE, size):
            block = stems[..., start : start + size]
            levels.add(block)
            envelope.add(block[0])
        results.append((levels.db(), *envelope.bounds()))
    for db, lows, highs in results[1:]:
        np.testing.assert_allclose(db, results[0][0], atol=1e-9)
        np.testing.assert_array_equal(lows, results[0][1])
        np.testing.assert_array_equal(highs, results[0][2])
    db, lows, highs = results[0]
    assert db.shape == (2, 20)  # 100 ms points
    np.testing.assert_allclose(db[0, :10], 20 * np.log10(0.01 / np.sqrt(2)), atol=0.05)
    np.testing.assert_allclose(db[0, 10:], 20 * np.log10(0.5 / np.sqrt(2)), atol=0.05)
    assert (db[1] == -100).all()  # silence sits at the floor
    assert highs[:25].max() < 0.011 and highs[25:].min() > 0.45 and lows[25:].max() < -0.45


def test_a_long_song_gets_longer_steps_not_more_points():
    levels = Levels(("a",), 44100, 44100 * 3600)  # an hour
    assert levels.points <= 3000 and levels.seconds_per_point == pytest.approx(1.2)


def _report(tmp_path: Path, **fields) -> SongReport:
    labels = labels_from_regions({"vocals": [(0, 1)], "drums": [(0.5, 2)]}, duration=2.0)
    envelope = Envelope(2 * RATE, RATE)
    envelope.add(np.stack([_sine(2.0, 0.3)] * 2))
    before, after = (Levels(labels.sources, RATE, 2 * RATE) for _ in range(2))
    for levels, leak in ((before, 0.1), (after, 0.0)):  # the vocals rest after 1 s, with leakage before
        rows = {"drums": _sine(2.0, 0.2), "vocals": np.concatenate([_sine(1.0, 0.2), _sine(1.0, leak)])}
        levels.add(np.stack([np.stack([rows.get(name, np.zeros(2 * RATE, np.float32))] * 2)
                             for name in labels.sources]))
    return SongReport(title=fields.pop("title", "song"), command="separate", envelope=envelope, after=after,
                      before=before, labels=labels, **fields)


def test_the_page_escapes_every_name_and_requests_nothing_from_the_network(tmp_path):
    report = _report(
        tmp_path, title=HOSTILE, facts=[("model", HOSTILE)], notes=[HOSTILE],
        players=[Player(HOSTILE, "mixture", "a%20b.wav"), Player("vocals", "written", None, HOSTILE)],
        adaptation={"plan": {"strategy": "P-L2:D", "steps": 40, "windows": 10, "trains": HOSTILE, "plan": HOSTILE,
                             "notes": [HOSTILE], "warnings": [HOSTILE], "held_out": {"gain_db": 0.4}},
                    "seconds": 12.5,
                    "check": {"sources": [{"source": HOSTILE, "seconds": 1.0, "before_db": -20.0, "after_db": -35.5}]},
                    "decision": {"write": "adapted", "reason": HOSTILE, "checked": True},
                    HOSTILE: {"decision": HOSTILE}},
    )
    page = render_report(report)
    assert page.count("<script") == 1 and "alert(" not in page.replace("alert(&quot;", "")  # only the page's own
    assert "\x07" not in page and "\u202e" not in page
    assert page.count(SHOWN) >= 10  # title, fact, note, player, note of a player, plan text, notes, warnings, key,
    # the checked source and the decision's reason
    assert not re.search(r"https?://", page)
    for target in re.findall(r'\b(?:src|href)="([^"]*)"', page):
        assert "://" not in target and not target.startswith(("/", "//")), target
    assert "-15.5 dB" in page and "More figures" in page and "gain_db" in page  # unknown keys are shown, not lost


def test_the_adaptation_section_says_what_was_decided():
    assert "Adapted with P-L2:D" in adaptation_html({"plan": {"strategy": "P-L2:D", "steps": 4}, "seconds": 3})
    assert "Not adapted (strategy B0)" in adaptation_html({"plan": {"strategy": "B0", "steps": 0}})
    filtered = adaptation_html({"plan": {"strategy": "B0", "resplits": True, "plan": "not adapting: few rests"}})
    assert "Not adapting: few rests." in filtered
    kept = adaptation_html({"plan": {"strategy": "P-L2:D", "steps": 4}, "decision": {
        "write": "pretrained", "reason": "adapting did not help: it leaks -9.0 dB against -10.0 dB"}})
    assert "Written: the pretrained model's stems</b>, because adapting did not help" in kept
    stopped = adaptation_html({"plan": {"strategy": "P-L2:D", "steps": 80}, "steps": 10,
                               "stopped": "stopped after 10 of 80 steps: the held-out error fell by 0.03 dB"})
    assert "10 of 80 planned steps" in stopped and "Training stopped after 10 of 80 steps" in stopped
    assert "More figures" not in stopped  # the stop is shown where it belongs, not as an unknown key


def test_relative_links_and_where_the_pages_go(tmp_path):
    page = tmp_path / "out" / "song" / "report.html"
    audio = tmp_path / "in put" / "#1 song?.wav"
    assert relative_href(audio, page) == "../../in%20put/%231%20song%3F.wav"
    a = {"vocals": tmp_path / "o" / "a" / "vocals.wav"}
    shared = {"vocals": tmp_path / "o" / "all" / "a_vocals.wav"}, {"vocals": tmp_path / "o" / "all" / "b_vocals.wav"}
    assert report_pages([("x/a.wav", a)], {"x/a.wav": "a"}) == {"x/a.wav": tmp_path / "o" / "a" / "report.html"}
    assert report_pages([("a.wav", shared[0]), ("b.wav", shared[1])], {"a.wav": "a", "b.wav": "b"}) == {
        "a.wav": tmp_path / "o" / "all" / "a.report.html", "b.wav": tmp_path / "o" / "all" / "b.report.html"}
    with pytest.raises(InputError, match="report pages would both be"):
        report_pages([("x/a.wav", shared[0]), ("y/a.wav", shared[1])], {"x/a.wav": "a", "y/a.wav": "a"})


@pytest.fixture
def song(tmp_path):
    """A song, leaky stems of it from "another separator" and its labels; the song's name is hostile."""
    t = np.arange(2 * RATE) / RATE
    vocals = 0.2 * np.sin(2 * np.pi * 1000 * t) * (t < 1)
    other = 0.2 * np.sin(2 * np.pi * 500 * t)
    folder = tmp_path / "sep"
    folder.mkdir()
    sf.write(folder / "vocals.wav", np.stack([vocals + 0.2 * other] * 2).T, RATE, subtype="FLOAT")
    sf.write(folder / "accompaniment.wav", np.stack([0.8 * other] * 2).T, RATE, subtype="FLOAT")
    name = tmp_path / "<b onclick=x>\"my song\" & 'co'.wav"
    sf.write(name, np.stack([vocals + other] * 2).T, RATE, subtype="FLOAT")
    (tmp_path / "labels.txt").write_text(LABELS)
    return name, folder, tmp_path / "labels.txt"


def test_filter_report_is_written_beside_the_stems_with_players_that_link_to_them(cli, song, tmp_path):
    track, stems, labels = song
    result = cli("filter", track, "--stems", stems, "--labels", labels, "-o", tmp_path / "out", "--report", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    page = Path(record["report"])
    assert page == Path(record["stems"]["vocals"]).parent / "report.html"
    html = page.read_text()
    assert html.count('data-name="lane"') == 2 and html.count('class="level"') == 2  # vocals, no_vocals
    assert "&lt;b onclick=x&gt;&quot;my song&quot; &amp; &#x27;co&#x27;" in html and "<b onclick" not in html
    sources = [urllib.parse.unquote(href) for href in re.findall(r'<audio[^>]* src="([^"]*)"', html)]
    assert len(sources) == 5  # the song, two stems written, two given
    assert {(page.parent / href).resolve() for href in sources} == {
        track.resolve(), *(Path(p).resolve() for p in record["stems"].values()),
        *(Path(p).resolve() for p in record["inputs"].values())}
    plain = cli("filter", track, "--stems", stems, "--labels", labels, "-o", tmp_path / "o2", "--report")
    assert plain.stdout.splitlines()[-1].endswith("report.html")


def test_a_report_page_never_replaces_an_input(cli, song, tmp_path):
    track, stems, _ = song
    labels = tmp_path / "out" / "song" / "report.html"
    labels.parent.mkdir(parents=True)
    labels.write_text(LABELS)
    result = cli("filter", track, "--stems", stems, "--labels", labels, "-o", tmp_path / "out", "--filename",
                 "song/{stem}.{ext}", "--report")
    assert result.exit_code == 2 and "the report page of" in result.stderr and "would overwrite" in result.stderr
    assert labels.read_text() == LABELS


@pytest.mark.slow  # separations and an adaptation: over a second
def test_separate_and_adapt_write_their_report_pages(cli, model_file, tmp_path):
    track = tmp_path / "song.wav"
    t = np.arange(2 * RATE) / RATE
    sf.write(track, np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2).T, RATE)
    (tmp_path / "labels.txt").write_text(LABELS)
    separated = cli("separate", track, "--model", model_file, "--labels", "labels.txt", "--strategy", "B0", "--resplit",
                    "-o", "sep", "--report")
    assert separated.exit_code == 0, separated.stderr
    lines = separated.stdout.splitlines()
    assert lines[-1] == "sep/tiny/song/report.html" and len(lines) == 5
    html = (tmp_path / lines[-1]).read_text()
    assert html.count('data-name="lane"') == 4 and "Not adapted (strategy B0)" in html and "stroke-dasharray" in html
    adapted = cli("adapt", track, "--model", model_file, "--labels", "labels.txt", "--strategy", "P-L5:D", "--epochs",
                  "1", "--window", "1", "-o", "m.th", "--report", "--json")
    assert adapted.exit_code == 0, adapted.stderr
    assert json.loads(adapted.stdout)["report"] == "m.report.html"
    html = (tmp_path / "m.report.html").read_text()
    assert "Adapted with P-L5:D" in html and "Loss per pass" in html
    assert "no labelled rest was long enough" in html  # a 2 s song: nothing held out, and the page says so
    assert html.count("<audio") == 1  # the song: adapt writes no stems
    again = cli("adapt", track, "--model", model_file, "--labels", "labels.txt", "--dry-run", "--report")
    assert again.exit_code == 2 and "--report and --dry-run" in again.stderr


# ---------------------------------------------------------------- in a real browser

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
# Collects the page's errors (its own and any resource that fails to load), counts its lanes, drives its script (a
# player starts, its time moves the playheads, a click on a figure seeks), and reads its colours and width.
HOOK = """<script>
var errors = [];
window.addEventListener("error", function (e) { errors.push(String(e.message || (e.target && e.target.src) || e.type)); }, true);
window.addEventListener("load", function () {
  var audio = document.querySelector("audio"), figure = document.querySelector("svg[data-seconds]");
  audio.dispatchEvent(new Event("play"));
  audio.dispatchEvent(new Event("timeupdate"));
  var box = figure.getBoundingClientRect();
  figure.dispatchEvent(new MouseEvent("click", {clientX: box.left + box.width * 0.9, clientY: box.top + 5, bubbles: true}));
  var head = figure.querySelector("[data-name=playhead]").getAttribute("points");
  document.body.setAttribute("data-test", JSON.stringify({errors: errors,
    lanes: document.querySelectorAll("#labels [data-name=lane]").length,
    playing: document.body.classList.contains("playing"), playhead: head, x0: figure.getAttribute("data-x0"),
    background: getComputedStyle(document.body).backgroundColor,
    overflow: document.documentElement.scrollWidth - window.innerWidth}));
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.slow  # starts a browser twice
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)")
def test_the_page_loads_without_errors_in_a_browser_and_is_drawn_light_and_dark(cli, song, tmp_path):
    track, stems, labels = song
    result = cli("filter", track, "--stems", stems, "--labels", labels, "-o", tmp_path / "out", "--report", "--json")
    assert result.exit_code == 0, result.stderr
    page = Path(json.loads(result.stdout)["report"])
    probe = page.with_name("probe.html")  # beside the page, so that its relative links resolve the same
    probe.write_text(page.read_text().replace("<head>", "<head>" + HOOK, 1))
    # On a phone's width, in dark mode:
    dumped = _chromium(tmp_path, "--window-size=390,1400", "--force-dark-mode", "--virtual-time-budget=5000",
                       "--dump-dom", probe.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    found = re.search(r'data-test="([^"]*)"', dumped.stdout)
    assert found, dumped.stdout[-2000:]
    state = json.loads(found.group(1).replace("&quot;", '"'))
    assert state["errors"] == [] and state["lanes"] == 2 and state["playing"]
    assert float(state["playhead"].split(",")[0]) > float(state["x0"]) + 500  # the click moved it to 90 %
    dark = int(DARK["bg"].lstrip("#"), 16)
    assert state["background"] == f"rgb({dark >> 16}, {(dark >> 8) & 255}, {dark & 255})"
    assert state["overflow"] <= 0  # the figures scroll in their own boxes; the page fits the phone
    # On a wide screen, in light mode:
    target = tmp_path / "light.png"
    shot = _chromium(tmp_path, "--window-size=1100,1400", f"--screenshot={target}", page.as_uri())
    assert shot.returncode == 0 and target.is_file(), shot.stderr[-2000:]
    pixels = np.asarray(Image.open(target).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, "the screenshot is blank"
    assert tuple(pixels[2, 2]) == (255, 255, 255)
