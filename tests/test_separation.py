"""Segmenting, shifts and rate/channel handling of the separation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ugosa_cli.audio import Audio
from ugosa_cli.errors import InputError
from ugosa_cli.separation import SeparationOptions, pick_device, separate_array, separate_audio, triangle_weight

from conftest import tone_mix


def _mix(seconds: float, rate: int = 8000) -> np.ndarray:
    return tone_mix(seconds, rate).T.copy()


def test_one_segment_covering_the_song_equals_a_plain_model_call(tiny_model):
    mix = _mix(0.5)
    stems = separate_array(tiny_model, mix, SeparationOptions(segment=1.0))
    wav = torch.from_numpy(mix)
    ref = wav.mean(0)
    with torch.no_grad():
        # demucs' normalisation, but for the mean: each of the 4 stems gets a quarter of it
        direct = tiny_model(((wav - ref.mean()) / ref.std())[None])[0] * ref.std() + ref.mean() / 4
    np.testing.assert_allclose(stems, direct.numpy(), atol=1e-5)


def test_segmented_output_is_a_weighted_average_of_overlapping_segments(tiny_model):
    mix = _mix(3.3)
    stems = separate_array(tiny_model, mix, SeparationOptions(segment=0.5, overlap=0.25))
    assert stems.shape == (4, 2, mix.shape[1])
    assert np.isfinite(stems).all()
    # Changing the overlap changes the result only a little: segments agree where they overlap.
    other = separate_array(tiny_model, mix, SeparationOptions(segment=0.5, overlap=0.5))
    assert np.abs(stems - other).mean() < 0.5 * np.abs(stems).mean()


def test_batching_segments_does_not_change_stems(tiny_model):
    mix = _mix(2.7)
    one = separate_array(tiny_model, mix, SeparationOptions(segment=0.4))
    many = separate_array(tiny_model, mix, SeparationOptions(segment=0.4, batch_size=5))
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_tail_shorter_than_the_encoder_filter_is_handled(tiny_model):
    segment = 1000
    stride = int(0.75 * segment)
    mix = _mix(1.0)[:, : 2 * stride + 3]  # last segment starts 3 samples before the end
    stems = separate_array(tiny_model, mix, SeparationOptions(segment=segment / 8000, overlap=0.25))
    assert np.isfinite(stems).all()
    tiny = separate_array(tiny_model, mix[:, :5])  # shorter than the filter length itself
    assert tiny.shape == (4, 2, 5) and np.isfinite(tiny).all()


def test_shifts_are_repeatable_with_a_seed_and_vary_without(tiny_model):
    mix = _mix(1.5)
    a = separate_array(tiny_model, mix, SeparationOptions(shifts=2, seed=3))
    b = separate_array(tiny_model, mix, SeparationOptions(shifts=2, seed=3))
    c = separate_array(tiny_model, mix, SeparationOptions(shifts=2, seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_progress_reports_every_segment(tiny_model):
    calls = []
    separate_array(tiny_model, _mix(2.0), SeparationOptions(segment=0.5, shifts=2, seed=0), progress=lambda d, t: calls.append((d, t)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] > 2


def test_silent_input_gives_silent_stems(tiny_model):
    stems = separate_array(tiny_model, np.zeros((2, 4000), dtype=np.float32))
    assert np.isfinite(stems).all()


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_stems_keep_the_input_rate_channels_and_length(tiny_model, rate, channels):
    samples = tone_mix(0.6, rate, channels).T.copy()
    audio = Audio(samples=samples, samplerate=rate, source="clip")
    stems = separate_audio(tiny_model, audio)
    assert stems.shape == (4, channels, samples.shape[1])
    # The stems of a mixture-consistent separation sum roughly to the mix (scale sanity, not quality).
    assert np.isfinite(stems).all()


def test_six_channels_need_downmix(tiny_model):
    audio = Audio(samples=np.zeros((6, 800), dtype=np.float32), samplerate=8000, source="surround.wav")
    with pytest.raises(InputError, match="6 channels.*--downmix"):
        separate_audio(tiny_model, audio)
    stems = separate_audio(tiny_model, audio, downmix=True)
    assert stems.shape == (4, 2, 800)


def test_triangle_weight_peaks_in_the_middle():
    w = triangle_weight(10)
    assert w.argmax() in (4, 5) and w.min() > 0 and w.max() == 1


def test_unavailable_device_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(InputError, match="--device cuda"):
        pick_device("cuda")
    assert pick_device("auto").type in ("cpu", "mps")
