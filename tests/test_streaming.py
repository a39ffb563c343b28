"""Long songs stream from file to stems: same stems as in memory, bounded memory, whole files or none."""

from __future__ import annotations

import errno
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli.audio import Audio, AudioFile, resample, write_failure
from ugosa_cli.errors import RunError
from ugosa_cli.labels import Labels, activation_matrix
from ugosa_cli.output import OutputSpec, StemSelection, StemWriter, write_separation
from ugosa_cli.postfilters import Gate
from ugosa_cli.separation import SeparationOptions, separate_array, separate_audio, separate_blocks

from conftest import tone_mix


class SmallBlocks:
    """An audio file read in blocks of an awkward size, as a streaming reader would see it."""

    def __init__(self, audio: AudioFile, size: int) -> None:
        self.audio, self.size = audio, size
        self.source, self.samplerate, self.channels, self.frames = audio.source, audio.samplerate, audio.channels, audio.frames

    def blocks(self, size: int = 0):
        return self.audio.blocks(self.size)


def _write(path: Path, seconds: float, rate: int, channels: int) -> Path:
    sf.write(path, tone_mix(seconds, rate, channels), rate, subtype="FLOAT")
    return path


@pytest.mark.parametrize("rate,channels", [(8000, 2), (11025, 1), (22050, 2)])
def test_streamed_file_gives_the_stems_of_separating_the_whole_song_at_once(tiny_model, tmp_path, rate, channels):
    path = _write(tmp_path / "song.wav", 2.3, rate, channels)
    options = SeparationOptions(segment=0.4, shifts=1, seed=5)
    streamed = np.concatenate(list(separate_blocks(tiny_model, SmallBlocks(AudioFile(path), 777), options)), axis=-1)
    # The reference: resample the whole song, separate it as one array, resample the stems back.
    audio = AudioFile(path).read()
    mix = resample(np.repeat(audio.samples, 2, axis=0) if channels == 1 else audio.samples, rate, 8000)
    whole = separate_array(tiny_model, mix, options)
    if channels == 1:
        whole = whole.mean(axis=1, keepdims=True)
    whole = np.stack([resample(stem, 8000, rate) for stem in whole])[..., : audio.frames]
    assert streamed.shape == (4, channels, audio.frames)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


@pytest.mark.slow  # among the slowest: CI runs it
def test_memory_does_not_grow_with_the_song(tiny_model, tmp_path):
    def peak_numpy_bytes(seconds: float) -> int:
        path = _write(tmp_path / f"song-{seconds}.wav", seconds, 8000, 2)
        tracemalloc.start()
        for _ in separate_blocks(tiny_model, AudioFile(path), SeparationOptions(segment=1.0)):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_numpy_bytes(10.0), peak_numpy_bytes(80.0)
    stems_bytes = 4 * 2 * 80 * 8000 * 4
    assert long < 2 * short  # 8x the song, not 8x the memory (what is left is block alignment)
    assert long < stems_bytes / 4


def _spec(tmp_path: Path, clip_mode: str = "rescale", bits: int = 32) -> OutputSpec:
    return OutputSpec(root=tmp_path / "out", fmt="wav", bits=bits, clip_mode=clip_mode)  # type: ignore[arg-type]


def _paths(spec: OutputSpec, names=("drums", "bass")) -> dict[str, Path]:
    return {name: spec.path(model="m", track="t", stem=name) for name in names}


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_rescale_divides_every_stem_by_one_factor_when_any_clips(tmp_path):
    spec = _spec(tmp_path)
    paths = _paths(spec)
    loud = np.full((2, 1000), 2.0, np.float32)
    quiet = np.full((2, 1000), 0.5, np.float32)
    with StemWriter(paths, 8000, 2, spec) as writer:
        writer.write({"drums": loud[:, :600], "bass": quiet[:, :600]})
        writer.write({"drums": loud[:, 600:], "bass": quiet[:, 600:]})
        writer.commit()
    drums, bass = sf.read(paths["drums"])[0], sf.read(paths["bass"])[0]
    assert drums.shape == (1000, 2)
    np.testing.assert_allclose(drums, 2.0 / 2.02, rtol=1e-6)
    np.testing.assert_allclose(bass, 0.5 / 2.02, rtol=1e-6)
    assert _all_files(tmp_path / "out") == sorted(paths.values())


@pytest.mark.parametrize("clip_mode,expected", [("clamp", 1.0), ("none", 2.0)])
def test_clamp_and_none_write_blocks_directly(tmp_path, clip_mode, expected):
    spec = _spec(tmp_path, clip_mode)
    paths = _paths(spec, ("vocals",))
    with StemWriter(paths, 8000, 1, spec) as writer:
        writer.write({"vocals": np.full((1, 500), 2.0, np.float32)})
        writer.commit()
    np.testing.assert_allclose(sf.read(paths["vocals"])[0], expected)


@pytest.mark.parametrize("clip_mode", ["rescale", "clamp"])
def test_a_failure_before_commit_leaves_no_file_at_all(tmp_path, clip_mode):
    spec = _spec(tmp_path, clip_mode, bits=16)
    paths = _paths(spec)
    with pytest.raises(KeyboardInterrupt), StemWriter(paths, 8000, 2, spec) as writer:
        writer.write({"drums": np.zeros((2, 100), np.float32), "bass": np.zeros((2, 100), np.float32)})
        raise KeyboardInterrupt
    assert _all_files(tmp_path / "out") == []


def test_an_input_path_is_never_a_target(tmp_path):
    spec = _spec(tmp_path)
    paths = _paths(spec, ("drums",))
    paths["drums"].parent.mkdir(parents=True)
    paths["drums"].write_bytes(b"the user's song")
    with pytest.raises(Exception, match="refusing to overwrite the input"):
        StemWriter(paths, 8000, 2, spec, protect=(paths["drums"],))
    assert paths["drums"].read_bytes() == b"the user's song"


def test_gating_block_by_block_equals_gating_the_whole_song_and_fades_smoothly():
    rate, frames = 8000, 8000
    labels = Labels(regions={"drums": ((0.25, 0.5),), "bass": ((0.0, 1.0),)}, unconstrained=(), duration=1.0)
    stems = np.ones((2, 1, frames), np.float32)
    gate = Gate(labels, rate, frames)
    whole = gate(stems, 0)
    pieces = np.concatenate([gate(stems[..., s : s + 999], s) for s in range(0, frames, 999)], axis=-1)
    np.testing.assert_allclose(pieces, whole, atol=1e-6)
    drums = whole[0, 0]
    assert drums[:1900].max() == 0 and drums[2100:3900].min() == pytest.approx(1.0) and drums[4100:].max() == 0
    assert np.abs(np.diff(drums)).max() <= 1 / 80 + 1e-6  # a 10 ms linear fade, no step
    np.testing.assert_allclose(whole[1, 0, 100:-100], 1.0)
    # Away from the fades the gate is exactly the labelled activations.
    activations = activation_matrix(labels, rate, frames)
    np.testing.assert_array_equal(drums[:1900], activations[0, :1900])


def test_write_separation_gates_selects_and_writes_every_block(tiny_model, tmp_path):
    path = _write(tmp_path / "song.wav", 1.5, 8000, 2)
    spec = _spec(tmp_path, "none")
    selection = StemSelection(two_stems="vocals")
    names = selection.names(tiny_model.sources)
    paths = {name: spec.path(model="m", track="song", stem=name) for name in names}
    blocks = separate_blocks(tiny_model, SmallBlocks(AudioFile(path), 1000), SeparationOptions(segment=0.5))
    with StemWriter(paths, 8000, 2, spec) as writer:
        write_separation(blocks, tiny_model.sources, writer, selection)
    stems = separate_audio(tiny_model, AudioFile(path).read(), SeparationOptions(segment=0.5))
    np.testing.assert_allclose(sf.read(paths["vocals"], always_2d=True)[0].T, stems[3], atol=1e-6)
    np.testing.assert_allclose(sf.read(paths["no_vocals"], always_2d=True)[0].T, stems[:3].sum(axis=0), atol=1e-5)


def test_a_full_disk_is_named_in_the_error():
    with pytest.raises(OSError) as caught, open("/dev/full", "wb") as handle:
        handle.write(b"\0" * 65536)
    assert caught.value.errno == errno.ENOSPC
    error = write_failure(Path("out/drums.wav"), caught.value)
    assert isinstance(error, RunError) and "disk is full" in error.message and "out/drums.wav" in error.message


def test_in_memory_audio_streams_like_a_file(tiny_model, tmp_path):
    path = _write(tmp_path / "song.wav", 1.2, 8000, 2)
    audio = AudioFile(path).read()
    from_file = np.concatenate(list(separate_blocks(tiny_model, AudioFile(path))), axis=-1)
    np.testing.assert_array_equal(separate_audio(tiny_model, Audio(audio.samples, 8000, "x")), from_file)


def test_a_wav_cut_off_inside_its_samples_is_separated_with_a_warning(cli, write_wav, model_file, tmp_path):
    song = write_wav("cut.wav", seconds=1.0, subtype="PCM_16")
    data = song.read_bytes()
    song.write_bytes(data[: 44 + 4 * 3000])  # header + 3000 of 8000 stereo 16-bit frames
    result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "cut.wav: the file is cut off" in result.stderr and "0.4 s" in result.stderr
    assert sf.info(result.stdout.split()[0]).frames == 3000


def test_every_command_that_reads_audio_warns_about_a_cut_off_wav(cli, write_wav, tmp_path):
    song = write_wav("cut.wav", seconds=1.0, subtype="PCM_16")
    song.write_bytes(song.read_bytes()[: 44 + 4 * 3000])
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t0.2\tvocals\n")
    result = cli("labels", "show", labels, "--audio", song, "--json")
    assert result.exit_code == 0, result.stderr
    assert "cut.wav: the file is cut off" in result.stderr
    assert json.loads(result.stdout)["duration"] == pytest.approx(3000 / 8000)
