"""`ugosa labels draft`: where each stem seems to play, from separated stems that leak."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.demo.synth import SOURCES, generate_song
from ugosa_cli.draft import DraftSettings, draft_labels
from ugosa_cli.errors import InputError
from ugosa_cli.hub import resolve_model
from ugosa_cli.labels import read_labels
from ugosa_cli.pipeline import GuidedSeparator

RATE = 8000
SECONDS = 20
SILENT = {"drums": (4.0, 8.0), "bass": (10.0, 14.5), "other": (15.2, 19.0), "vocals": (1.0, 4.5)}


def leaky_stems(leak_db: float = -25.0, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Four stereo stems, each silent over its SILENT section, as a separator would give them: there each
    holds the sum of the others ``leak_db`` below; and the true mix."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE * SECONDS) / RATE
    raw = {
        "drums": 0.3 * rng.standard_normal(t.size) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)),
        "bass": 0.4 * np.sin(2 * np.pi * 55 * t),
        "other": 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size),
        "vocals": 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.3 * np.sin(2 * np.pi * 5 * t)),
    }
    true = {}
    for name, signal in raw.items():
        start, end = SILENT[name]
        gain = np.where((t >= start) & (t < end), 0.0, 1.0)
        true[name] = np.stack([signal * gain, 0.7 * signal * gain])
    mix = sum(true.values())
    leak = 10 ** (leak_db / 20)
    stems = {}
    for name, stem in true.items():
        start, end = SILENT[name]
        inside = (t >= start) & (t < end)
        stems[name] = stem + leak * (mix - stem) * inside
    return stems, mix


def _draft(stems: dict[str, np.ndarray], mix: np.ndarray, **kw) -> object:
    return draft_labels([np.stack([stems[n] for n in SOURCES])], [mix], RATE, SOURCES, **kw)


def test_leakage_is_not_silence_each_rest_is_found_within_a_quarter_second():
    stems, mix = leaky_stems(-25.0)
    labels = _draft(stems, mix)
    assert labels.duration == SECONDS and labels.unconstrained == ()
    for name, (start, end) in SILENT.items():
        spans = labels.regions[name]
        rests = [(a, b) for (_, a), (b, _) in zip(spans, spans[1:])]
        if spans[0][0] > 0:
            rests.insert(0, (0.0, spans[0][0]))
        assert len(rests) == 1, (name, spans)
        assert abs(rests[0][0] - start) <= 0.25 and abs(rests[0][1] - end) <= 0.25, (name, rests)


def test_an_absolute_threshold_would_call_the_leakage_active():
    """The paper's detector, tuned for isolated stems, finds no rest in stems that leak at -20 dB."""
    from ugosa_cli.stem_activity import detect_activations

    stems, _ = leaky_stems(-20.0)
    isolated = detect_activations(stems, RATE)
    assert all(isolated.regions[name] == ((0.0, SECONDS),) for name in SOURCES)


def test_blocks_of_any_size_give_the_same_draft():
    stems, mix = leaky_stems()
    stacked = np.stack([stems[n] for n in SOURCES])
    whole = draft_labels([stacked], [mix], RATE, SOURCES)
    pieces = lambda x, size: (x[..., s : s + size] for s in range(0, x.shape[-1], size))  # noqa: E731
    assert draft_labels(pieces(stacked, 777), pieces(mix, 5000), RATE, SOURCES) == whole


def test_only_the_chosen_sources_are_labelled_the_others_stay_unconstrained():
    stems, mix = leaky_stems()
    labels = _draft(stems, mix, only=["vocals"])
    assert labels.unconstrained == ("drums", "bass", "other")
    assert len(labels.regions["vocals"]) == 2


def test_a_stem_too_weak_to_tell_is_left_out_and_the_user_told_what_to_do():
    """The vocals stem holds only what leaked into it, 25 dB below the mix: an instrumental, or vocals the
    model misses. Calling them silent would be the costly error if they sing, so the draft leaves them
    unconstrained and says how to label them; a lower --presence drafts them (silent throughout)."""
    stems, mix = leaky_stems()
    stems["vocals"] = 10 ** (-25 / 20) * (mix - stems["vocals"])
    labels = _draft(stems, mix)
    assert labels.unconstrained == ("vocals",)
    assert labels.regions["drums"] == _draft(*leaky_stems()).regions["drums"]
    note = [w for w in labels.warnings if w.startswith("vocals: left out of the draft")]
    assert len(note) == 1 and "no vocals" in note[0] and "-12 dB" in note[0]
    assert _draft(stems, mix, settings=DraftSettings(presence=-30.0)).regions["vocals"] == ()


def test_a_level_hovering_at_the_threshold_does_not_flicker():
    t = np.arange(RATE * 10) / RATE
    loud = np.sin(2 * np.pi * 200 * t)
    # the "vocals" wobble between 8 and 10 dB below their loud level every 0.4 s after 5 s
    wobble = np.where(t < 5, 1.0, np.where((t * 2.5).astype(int) % 2, 10 ** (-8 / 20), 10 ** (-10 / 20)))
    stems = {"drums": np.stack([loud, loud]), "bass": np.stack([loud, loud]) * 0.5,
             "other": np.stack([loud, loud]) * 0.5, "vocals": np.stack([loud * wobble] * 2)}
    mix = sum(stems.values())
    labels = draft_labels([np.stack([stems[n] for n in SOURCES])], [mix], RATE, SOURCES,
                          settings=DraftSettings(own=-9.0, min_gap=0.0, min_region=0.0))
    assert len(labels.regions["vocals"]) == 1


def test_too_short_and_silent_songs_are_refused_with_a_clear_message():
    stems, mix = leaky_stems()
    short = {name: stem[:, : RATE] for name, stem in stems.items()}
    with pytest.raises(InputError, match=r"1\.00 s long; a draft needs at least 2 s"):
        _draft(short, mix[:, :RATE])
    silent = {name: np.zeros_like(stem) for name, stem in stems.items()}
    with pytest.raises(InputError, match="silent"):
        _draft(silent, np.zeros_like(mix))


@pytest.fixture(scope="module")
def demo() -> LoadedModel:
    return resolve_model("demo", offline=True)


@pytest.mark.parametrize("seed", [2_000_600, 2_000_602])
def test_with_the_demo_model_on_songs_it_separates_cleanly_borders_are_within_a_quarter_second(demo, seed):
    """Where the pretrained stems are clean (sounds like its training songs), the draft from them puts every
    border within 0.25 s of the draft from the true stems (where each stem really starts and stops)."""
    song = generate_song(seed, duration=10, timbre=0.0, rests="quarters")
    estimates = GuidedSeparator(demo).separate_array(song.mix).model
    drafted = draft_labels([estimates], [song.mix], song.samplerate, SOURCES)
    truth = draft_labels([np.stack([song.stems[n] for n in SOURCES])], [song.mix], song.samplerate, SOURCES)
    for name in SOURCES:
        found, real = drafted.regions[name], truth.regions[name]
        assert len(found) == len(real), (name, found, real)
        for (a, b), (c, d) in zip(found, real):
            assert abs(a - c) <= 0.25 and abs(b - d) <= 0.25, (name, found, real)


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture
def song_dir(tmp_path):
    stems, mix = leaky_stems()
    folder = tmp_path / "stems"
    folder.mkdir()
    for name, stem in stems.items():
        sf.write(folder / f"{name}.wav", stem.T, RATE, subtype="FLOAT")
    song = tmp_path / "song.wav"
    sf.write(song, mix.T / 2, RATE, subtype="FLOAT")
    return song, folder


def test_draft_writes_an_audacity_track_a_person_can_open_and_adapt_with(cli, song_dir, tmp_path):
    song, folder = song_dir
    out = tmp_path / "labels.txt"
    result = cli("labels", "draft", song, "--stems-dir", folder, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    lines = out.read_text().splitlines()
    assert all(len(line.split("\t")) == 3 for line in lines)
    labels = read_labels(out, duration=SECONDS)
    assert labels.unconstrained == ()
    assert labels.regions["vocals"][0][1] == pytest.approx(SILENT["vocals"][0], abs=0.25)
    assert "vocals: 2 region(s)" in result.stderr


def test_draft_prints_the_labels_without_o_or_with_o_dash_and_json_has_them(cli, song_dir):
    song, folder = song_dir
    plain = cli("labels", "draft", song, "--stems-dir", folder, "-q")
    dash = cli("labels", "draft", song, "--stems-dir", folder, "-o", "-", "-q")
    assert plain.exit_code == 0 and dash.exit_code == 0, plain.stderr + dash.stderr
    assert plain.stdout == dash.stdout and plain.stdout.count("\n") >= 4 and plain.stderr == ""
    result = cli("labels", "draft", song, "--stems-dir", folder, "--json", "--sources", "vocals,bass")
    report = json.loads(result.stdout)
    assert report["output"] is None and report["duration"] == SECONDS
    assert report["labels"]["unconstrained"] == ["drums", "other"]
    assert len(report["labels"]["sources"]["bass"]) == 2


def test_draft_refuses_to_overwrite_the_song_and_names_bad_sources(cli, song_dir):
    song, folder = song_dir
    before = song.read_bytes()
    result = cli("labels", "draft", song, "--stems-dir", folder, "-o", song)
    assert result.exit_code == 2 and "refusing to overwrite the input song" in result.stderr
    assert song.read_bytes() == before
    result = cli("labels", "draft", song, "--stems-dir", folder, "--sources", "guitar")
    assert result.exit_code == 2 and "guitar: unknown source" in result.stderr


def test_draft_of_a_short_or_silent_song_says_why(cli, tmp_path, model_file):
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((RATE, 2)) + 0.1, RATE)
    result = cli("labels", "draft", short, "--model", model_file)
    assert result.exit_code == 2 and "a draft needs at least 2 s" in result.stderr
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((4 * RATE, 2)), RATE)
    result = cli("labels", "draft", silent, "--model", model_file)
    assert result.exit_code == 2 and "the song is silent" in result.stderr
    assert "Traceback" not in result.stderr


def test_draft_separates_with_the_model_when_no_stems_are_given(cli, write_wav, model_file, tmp_path):
    song = write_wav("song.wav", seconds=3.0)
    result = cli("labels", "draft", song, "--model", model_file, "-o", tmp_path / "d.json", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "tiny" and report["format"] == "json"
    written = json.loads((tmp_path / "d.json").read_text())
    assert set(written["sources"]) == set(SOURCES)


def test_draft_says_which_source_it_left_out_and_the_file_leaves_it_unconstrained(cli, song_dir, tmp_path):
    song, folder = song_dir
    stems, mix = leaky_stems()
    sf.write(folder / "vocals.wav", (10 ** (-25 / 20) * (mix - stems["vocals"])).T, RATE, subtype="FLOAT")
    out = tmp_path / "labels.txt"
    result = cli("labels", "draft", song, "--stems-dir", folder, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "vocals: left out of the draft" in result.stderr and "vocals: 0 region(s)" not in result.stderr
    assert "no labels for" not in result.stderr  # one line per left-out source, with its reason
    assert "vocals" not in out.read_text()
    assert read_labels(out, duration=SECONDS).unconstrained == ("vocals",)
    lower = cli("labels", "draft", song, "--stems-dir", folder, "--presence", "-30", "-q")
    assert lower.exit_code == 0 and f"0.000000\t{SECONDS:.6f}\tno vocals" in lower.stdout  # silent throughout
    bad = cli("labels", "draft", song, "--stems-dir", folder, "--presence", "3")
    assert bad.exit_code == 2 and "--presence 3" in bad.stderr


def test_a_draft_without_any_clear_rest_says_adapting_needs_one():
    stems, mix = leaky_stems()
    labels = _draft(stems, mix, settings=DraftSettings(min_gap=5.0))  # every rest here is shorter than 5 s
    assert all(labels.regions[name] == ((0.0, SECONDS),) for name in SOURCES)
    assert any(w.startswith("no clear rest of 5 s or more found for drums, bass, other, vocals") for w in labels.warnings)
    assert not any("no clear rest" in w for w in _draft(stems, mix).warnings)
