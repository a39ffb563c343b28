"""`ugosa separate` end to end on synthesized audio, with a small model file."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tone_mix

STEMS = ("drums", "bass", "other", "vocals")


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_stems_line_up_with_the_input(cli, write_wav, model_file, tmp_path, rate, channels):
    song = write_wav("song.wav", seconds=0.5, samplerate=rate, channels=channels)
    result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"{s}.wav" for s in STEMS]
    for path in paths:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (rate, channels, int(0.5 * rate))
        assert path.startswith(str(tmp_path / "out" / "tiny" / "song"))


def test_json_output_is_one_object_per_track(cli, write_wav, model_file, tmp_path):
    a = write_wav("a.wav", seconds=0.3)
    b = write_wav("b.wav", seconds=0.3)
    result = cli("separate", a, b, "--model", model_file, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["track"] for o in objects] == ["a", "b"]
    assert set(objects[0]["stems"]) == set(STEMS)
    assert objects[0]["samplerate"] == 8000 and objects[0]["duration"] == pytest.approx(0.3)


def test_stdin_input(cli, model_file, tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, tone_mix(0.3, 8000), 8000, format="WAV")
    result = cli("separate", "-", "--model", model_file, "-o", tmp_path / "out", stdin=buffer.getvalue())
    assert result.exit_code == 0, result.stderr
    assert "/stdin/vocals.wav" in result.stdout


def test_flac_24_bit_and_float_wav(cli, write_wav, model_file, tmp_path):
    song = write_wav(seconds=0.3)
    flac = cli("separate", song, "--model", model_file, "-o", tmp_path / "f", "--format", "flac", "--bits", "24")
    assert flac.exit_code == 0, flac.stderr
    assert sf.info(flac.stdout.split()[0]).subtype == "PCM_24"
    floats = cli("separate", song, "--model", model_file, "-o", tmp_path / "w", "--bits", "32")
    assert sf.info(floats.stdout.split()[0]).subtype == "FLOAT"
    bad = cli("separate", song, "--model", model_file, "--format", "flac", "--bits", "32")
    assert bad.exit_code == 2 and "FLAC" in bad.stderr


def test_stem_subset_and_two_stems(cli, write_wav, model_file, tmp_path):
    song = write_wav(seconds=0.3)
    subset = cli("separate", song, "--model", model_file, "-o", tmp_path / "s", "--stems", "vocals,bass")
    assert [p.rsplit("/", 1)[1] for p in subset.stdout.split()] == ["bass.wav", "vocals.wav"]
    two = cli("separate", song, "--model", model_file, "-o", tmp_path / "t", "--two-stems", "vocals", "--bits", "32", "--clip-mode", "none")
    vocals, rest = (sf.read(p)[0] for p in two.stdout.split())
    full = cli("separate", song, "--model", model_file, "-o", tmp_path / "u", "--bits", "32", "--clip-mode", "none")
    stems = {p.rsplit("/", 1)[1][:-4]: sf.read(p)[0] for p in full.stdout.split()}
    np.testing.assert_allclose(rest, stems["drums"] + stems["bass"] + stems["other"], atol=1e-6)
    np.testing.assert_allclose(vocals, stems["vocals"], atol=1e-7)
    unknown = cli("separate", song, "--model", model_file, "--stems", "guitar")
    assert unknown.exit_code == 2 and "guitar" in unknown.stderr


def test_shifts_with_seed_repeat(cli, write_wav, model_file, tmp_path):
    song = write_wav(seconds=0.8)
    runs = [cli("separate", song, "--model", model_file, "-o", tmp_path / f"r{i}", "--shifts", "2", "--seed", "1", "--bits", "32") for i in range(2)]
    a, b = (sf.read(r.stdout.split()[0])[0] for r in runs)
    np.testing.assert_array_equal(a, b)


def test_rescale_keeps_every_sample_in_range(cli, write_wav, model_file, tmp_path):
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.clip(tone_mix(0.3, 8000) * 6, -1, 1), 8000, subtype="FLOAT")
    result = cli("separate", loud, "--model", model_file, "-o", tmp_path / "o", "--bits", "32")
    peaks = [np.abs(sf.read(p)[0]).max() for p in result.stdout.split()]
    assert max(peaks) <= 1.0


def _file(folder, name, content: bytes | None):
    path = folder / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.wav", None, "no such file"),
        ("empty.wav", b"", "empty"),
        ("notes.wav", b"hello, I am not audio", "cannot read audio"),
        ("truncated.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "cannot read audio"),
    ],
)
def test_bad_audio_is_one_clear_line_and_exit_2(cli, tmp_path, model_file, name, content, message):
    result = cli("separate", _file(tmp_path, name, content), "--model", model_file)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_nan_samples_are_refused(cli, tmp_path, model_file):
    samples = tone_mix(0.2, 8000)
    samples[100, 0] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 8000, subtype="FLOAT")
    result = cli("separate", path, "--model", model_file)
    assert result.exit_code == 2 and "NaN" in result.stderr


def test_zero_sample_file(cli, tmp_path, model_file):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 8000)
    result = cli("separate", path, "--model", model_file)
    assert result.exit_code == 2 and "no samples" in result.stderr


def test_unknown_model_and_corrupt_checkpoint(cli, write_wav, tmp_path, model_file):
    song = write_wav(seconds=0.2)
    unknown = cli("separate", song, "--model", "tasnet_mega", "--offline")
    assert unknown.exit_code == 2 and "tasnet_mega" in unknown.stderr
    corrupt = tmp_path / "corrupt.th"
    corrupt.write_bytes(model_file.read_bytes()[:300])
    result = cli("separate", song, "--model", corrupt)
    assert result.exit_code == 2 and "corrupt.th" in result.stderr
    wrong = tmp_path / "wrong.th"
    torch.save({"encoder.conv1d_U.weight": torch.zeros(4, 2, 8)}, wrong)
    result = cli("separate", song, "--model", wrong)
    assert result.exit_code == 2 and "missing" in result.stderr


def test_unwritable_output_folder_leaves_nothing_behind(cli, write_wav, tmp_path, model_file):
    song = write_wav(seconds=0.2)
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    result = cli("separate", song, "--model", model_file, "-o", blocker / "out")
    assert result.exit_code in (1, 2) and "file-not-folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_input_is_never_overwritten(cli, tmp_path, model_file):
    song = tmp_path / "vocals.wav"
    sf.write(song, tone_mix(0.2, 8000), 8000)
    original = song.read_bytes()
    result = cli("separate", song, "--model", model_file, "-o", tmp_path, "--filename", "{stem}.{ext}")
    assert result.exit_code == 2 and "overwrite the input" in result.stderr
    assert song.read_bytes() == original


def test_one_bad_track_does_not_lose_the_others(cli, write_wav, tmp_path, model_file):
    good = write_wav("good.wav", seconds=0.2)
    result = cli("separate", tmp_path / "missing.wav", good, "--model", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "good/vocals.wav" in result.stdout
    assert "missing.wav" in result.stderr and "1 of 2 tracks failed" in result.stderr


def test_bad_template_field(cli, write_wav, model_file):
    result = cli("separate", write_wav(seconds=0.2), "--model", model_file, "--filename", "{artist}/{stem}.{ext}")
    assert result.exit_code == 2 and "{artist}" in result.stderr


def test_version_and_help(cli):
    from ugosa_cli import __version__

    assert cli("--version").stdout.strip() == f"ugosa {__version__}"
    help_text = cli("separate", "--help").stdout
    assert "--two-stems" in help_text and "--labels" in help_text


MP3 = "MP3" in sf.available_formats()


@pytest.mark.skipif(not MP3, reason="this libsndfile cannot write MP3")
@pytest.mark.parametrize("flags", [("--mp3",), ("--format", "mp3")])
def test_mp3_stems_as_demucs_users_ask_for_them(cli, write_wav, model_file, tmp_path, flags):
    song = write_wav("song.wav", seconds=1.0, samplerate=44100)
    result = cli("separate", song, "-n", model_file, *flags, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"{s}.mp3" for s in STEMS]
    for path in paths:
        info = sf.info(path)
        assert info.format == "MP3" and (info.samplerate, info.channels, info.frames) == (44100, 2, 44100)
        assert 300_000 < 8 * (tmp_path / path).stat().st_size / info.duration < 360_000  # about 320 kbps


@pytest.mark.skipif(not MP3, reason="this libsndfile cannot write MP3")
def test_a_rate_mp3_cannot_store_is_refused_before_any_work(cli, write_wav, model_file, tmp_path):
    song = write_wav("song.wav", seconds=0.5, samplerate=96000)
    result = cli("separate", song, "--model", model_file, "--mp3", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "not 96000 Hz" in result.stderr and "--format flac" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.mp3"))


def test_mp3_where_libsndfile_cannot_write_it_is_one_clear_line(cli, write_wav, model_file, tmp_path, monkeypatch):
    monkeypatch.setattr(sf, "available_formats", lambda: {"WAV": "WAV", "FLAC": "FLAC"})
    result = cli("separate", write_wav("song.wav", seconds=0.3), "--model", model_file, "--mp3", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "cannot write MP3" in result.stderr and "Traceback" not in result.stderr
