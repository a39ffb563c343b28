"""`ugosa filter`: the label post-filters applied to stems from any separator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr

from ugosa_cli.errors import InputError
from ugosa_cli.stemfilter import stem_layout

from conftest import tone_mix

RATE = 8000
LABELS = "0\t1\tvocals\n0.5\t2\tdrums\n0\t2\tbass\n0\t2\tother\n"  # vocals rest after 1 s, drums before 0.5 s
WINDOW = 512  # the resplit's window at 8 kHz: a rest is exactly silent a window away from its borders


def _tone(frequency: float, seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.2 * np.sin(2 * np.pi * frequency * t)
    return np.stack([mono, 0.8 * mono]).astype(np.float32)  # (channels, frames)


@pytest.fixture
def song(tmp_path):
    """A song of four tones (true stems drums, bass, other, vocals), estimates in which the vocals hold a fifth of
    "other", and labels."""
    true = {"drums": _tone(2000), "bass": _tone(125), "other": _tone(500), "vocals": _tone(1000)}
    true["drums"][:, : RATE // 2] = 0
    true["vocals"][:, RATE:] = 0
    mix = sum(true.values())
    folder = tmp_path / "sep"
    folder.mkdir()
    leaked = {**true, "vocals": true["vocals"] + 0.2 * true["other"], "other": 0.8 * true["other"]}  # adds up
    for name, stem in leaked.items():
        sf.write(folder / f"{name}.wav", stem.T, RATE, subtype="FLOAT")
    sf.write(tmp_path / "song.wav", mix.T, RATE, subtype="FLOAT")
    (tmp_path / "labels.txt").write_text(LABELS)
    return tmp_path, true, leaked


def _stems(stdout: str) -> dict[str, np.ndarray]:
    return {name: sf.read(path, always_2d=True)[0].T for name, path in json.loads(stdout)["stems"].items()}


FLOAT = ("--bits", "32", "--clip-mode", "none", "--json")


@pytest.mark.parametrize(
    "given, stems, holds",
    [
        (["vocals", "drums", "bass", "other"], ("drums", "bass", "other", "vocals"), None),
        (["Vox", "no_vocals"], ("vocals", "no_vocals"), {"no_vocals": ("drums", "bass", "other")}),
        (["1_song_(Vocals)", "1_song_(Instrumental)"], ("vocals", "no_vocals"), None),
        (["vocals", "accompaniment"], ("vocals", "no_vocals"), None),
        (["song_lead_vocals", "kit", "synth"], ("drums", "vocals", "synth"), {"synth": ("synth",)}),
        (["guitar", "keys", "vocals", "instrumental"], ("vocals", "guitar", "piano", "no_vocals"),
         {"no_vocals": ("drums", "bass", "other")}),
    ],
)
def test_stems_are_named_by_the_labels_vocabulary(given, stems, holds):
    layout = stem_layout(given)
    assert layout.stems == stems
    for stem, sources in (holds or {}).items():
        assert layout.holds[stem] == sources


def test_sources_without_a_stem_are_held_by_the_residual_and_map_names_stems():
    layout = stem_layout(["vocals", "synth"], {"synth": "other", "guitar": "other"})
    assert layout.stems == ("other", "vocals") and layout.unheld == ("drums", "bass")
    with pytest.raises(InputError, match="'vocals' and 'vox' are both vocals"):
        stem_layout(["vocals", "vox"])
    with pytest.raises(InputError, match="each hold all but one source"):
        stem_layout(["no_vocals", "no_drums"])
    with pytest.raises(InputError, match="NAME=FILE"):
        stem_layout(["Mein Gesang!"])


def test_filter_resplits_stems_from_another_separator(cli, song):
    folder, true, leaked = song
    result = cli("filter", folder / "song.wav", "--stems", folder / "sep", "--labels", folder / "labels.txt",
                 "-o", folder / "out", *FLOAT)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["stems"]["vocals"] == str(folder / "out" / "song" / "vocals.wav")
    stems = _stems(result.stdout)
    assert list(stems) == ["drums", "bass", "other", "vocals"]
    mix = sf.read(folder / "song.wav", always_2d=True)[0].T
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-4)
    assert np.abs(stems["vocals"][:, RATE + WINDOW :]).max() == 0  # the vocals' leakage is gone where they rest
    assert np.abs(leaked["vocals"][:, RATE + WINDOW :]).max() > 0.01
    np.testing.assert_allclose(stems["other"][:, RATE + WINDOW : -WINDOW], true["other"][:, RATE + WINDOW : -WINDOW],
                               atol=2e-3)  # ... handed back to the stem it came from
    assert "add up to the mixture" in result.stderr and report["residual_db"] < -60


def test_two_stems_at_another_rate_length_and_channel_count_are_matched_with_warnings(cli, song):
    folder, true, _ = song
    uvr = folder / "uvr"
    uvr.mkdir()
    vocals = true["vocals"] + 0.2 * true["other"]
    sf.write(uvr / "1_song_(Vocals).wav", soxr.resample(vocals.T, RATE, 16000)[:-160], 16000, subtype="FLOAT")
    instrumental = (true["drums"] + true["bass"] + 0.8 * true["other"]).mean(axis=0)
    sf.write(uvr / "1_song_(Instrumental).wav", instrumental, RATE, subtype="FLOAT")
    result = cli("filter", folder / "song.wav", "--stems", uvr, "--labels", folder / "labels.txt", "-o",
                 folder / "out", *FLOAT)
    assert result.exit_code == 0, result.stderr
    for line in ("1_song_(Vocals).wav: resampled from 16000 Hz to the mixture's 8000 Hz",
                 "1_song_(Vocals).wav: 1.990 s zero-padded to the mixture's 2.000 s",
                 "1_song_(Instrumental).wav: mono, copied to both channels of the stereo mixture",
                 "stems: vocals <- "):
        assert line in result.stderr
    stems = _stems(result.stdout)
    assert list(stems) == ["vocals", "no_vocals"] and stems["vocals"].shape == (2, 2 * RATE)
    assert np.abs(stems["vocals"][:, RATE + WINDOW :]).max() == 0
    assert np.abs(stems["no_vocals"][:, RATE + WINDOW :]).max() > 0.1  # it holds drums, bass and other


def test_a_stem_alone_keeps_its_own_sound_and_the_rest_of_the_mix_is_not_pushed_into_it(cli, song):
    folder, _, leaked = song
    result = cli("filter", folder / "song.wav", "--stems", f"vocals={folder / 'sep' / 'vocals.wav'}", "--labels",
                 folder / "labels.txt", "-o", folder / "out", *FLOAT)
    assert result.exit_code == 0, result.stderr
    assert "no stem holds drums, bass, other: what the stems miss of the mixture" in result.stderr
    vocals = _stems(result.stdout)["vocals"]
    playing = slice(WINDOW, RATE - WINDOW)
    # Where the vocals play, the stem is the one given (a playing stem keeps its own sound); the rest of the mix,
    # which the unheld sources stand for, is not handed over to it.
    np.testing.assert_allclose(vocals[:, playing], leaked["vocals"][:, playing], atol=1e-3)
    assert np.abs(vocals[:, RATE + WINDOW :]).max() == 0


def test_stems_that_miss_part_of_the_mixture_get_a_warning_naming_how_much(cli, song):
    folder, _, leaked = song
    half = folder / "half"
    half.mkdir()
    for name, stem in leaked.items():
        sf.write(half / f"{name}.wav", 0.5 * stem.T, RATE, subtype="FLOAT")
    result = cli("filter", folder / "song.wav", "--stems", half, "--labels", folder / "labels.txt", "-o",
                 folder / "out", "--mode", "gate", *FLOAT)
    assert result.exit_code == 0, result.stderr
    assert "ugosa: warning: the stems do not add up to the mixture: what they miss or add is -6.0 dB" in result.stderr
    assert json.loads(result.stdout)["residual_db"] == pytest.approx(-6.02, abs=0.01)
    stems = _stems(result.stdout)
    inside = slice(RATE // 2 + 100, RATE - 100)  # the gate fades over 10 ms at each border
    np.testing.assert_allclose(stems["vocals"][:, inside], 0.5 * leaked["vocals"][:, inside], atol=1e-6)
    assert np.abs(stems["vocals"][:, RATE + 100 :]).max() == 0 and np.abs(stems["drums"][:, : RATE // 2 - 100]).max() == 0


def test_filter_refuses_bad_calls_with_one_line(cli, song):
    folder, _, _ = song
    song_wav, labels, sep = folder / "song.wav", folder / "labels.txt", folder / "sep"
    cases = [
        (("--stems", sep), "filter needs --labels"),
        (("--labels", labels), "no stems to filter"),
        (("--stems", sep, "--labels", labels, "--mode", "mute"), "--mode mute: use one of gate, resplit"),
        (("--stems", f"vox={sep / 'vocals.wav'}", "--stems", sep / "vocals.wav", "--labels", labels),
         "are both vocals"),
        (("--stems", sep, "--labels", labels, "-o", sep, "--filename", "{stem}.{ext}"), "would overwrite the"),
    ]
    before = sf.read(sep / "vocals.wav")[0]
    for args, message in cases:
        result = cli("filter", song_wav, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    np.testing.assert_array_equal(sf.read(sep / "vocals.wav")[0], before)


@pytest.mark.slow  # two separations: over a second
def test_filter_of_ugosas_own_pretrained_stems_writes_what_separate_b0_resplit_writes(cli, model_file, tmp_path):
    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(2.0, RATE, seed=2), RATE, subtype="FLOAT")
    labels = tmp_path / "labels.txt"
    labels.write_text(LABELS)
    common = ("--model", model_file, "--bits", "32", "--clip-mode", "none", "--json")
    resplit = cli("separate", song, "--labels", labels, "--strategy", "B0", "--resplit", "-o", tmp_path / "b0", *common)
    plain = cli("separate", song, "-o", tmp_path / "plain", *common)
    assert resplit.exit_code == 0 and plain.exit_code == 0, resplit.stderr + plain.stderr
    folder = tmp_path / "plain" / "tiny" / "song"
    filtered = cli("filter", song, "--stems", folder, "--labels", labels, "-o", tmp_path / "f", *FLOAT)
    assert filtered.exit_code == 0, filtered.stderr
    expected, written = _stems(resplit.stdout), _stems(filtered.stdout)
    assert list(written) == list(expected)
    for name in expected:
        # Equal to float32 rounding: the resplit's overlap-add sums its frames in an order that depends on the
        # block sizes the stems come in (the model's segments in `separate`, the file's blocks here).
        np.testing.assert_allclose(written[name], expected[name], rtol=0, atol=1e-6)


def test_the_song_in_the_stems_folder_is_not_taken_for_a_stem(cli, song):
    folder, _, _ = song
    inside = folder / "sep" / "song.wav"
    inside.write_bytes((folder / "song.wav").read_bytes())
    result = cli("filter", inside, "--stems", folder / "sep", "--labels", folder / "labels.txt", "-o", folder / "out",
                 "--json")
    assert result.exit_code == 0, result.stderr
    assert f"leaving out {inside}: it is the song" in result.stderr
    assert list(json.loads(result.stdout)["stems"]) == ["drums", "bass", "other", "vocals"]
