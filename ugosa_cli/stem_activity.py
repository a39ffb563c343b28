"""Where each source plays, detected from its isolated stem (MedleyDB activation confidence, as in the paper).

Per channel, for every stem: a half-wave rectified, square-rooted signal is averaged under a Hann window
(4096 samples at 44.1 kHz, hop half of it; scaled to keep the same length in seconds at other rates).
The envelopes are normalised by the maximum of their sum times the number of stems, set to zero where
the summed envelope is below 0.01, smoothed by a 2nd-order Butterworth low-pass (cutoff 0.075 of the
frame-rate Nyquist) run forward and backward, and mapped to a confidence
``C = 1 - 1 / (1 + exp(20 (H - theta)))``. A frame is active where ``C > 0.5``; a source is active where
any of its channels is. Each border is then sharpened: moved inwards to where the unsmoothed envelope
crosses theta, undoing the spread of the low-pass (see :func:`detect_activations`). Short gaps are then filled and
short regions dropped, so the result looks like what a person would draw (``min_gap=0, min_region=0`` keeps the paper's activations as they are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ugosa_cli.errors import InputError
from ugosa_cli.labels import Labels, labels_from_regions, runs
from ugosa_cli.sources import DEFAULT_SOURCES

REFERENCE_RATE = 44100
REFERENCE_WINDOW = 4096  # samples at REFERENCE_RATE
LOWPASS_CUTOFF = 0.075  # of the frame rate's Nyquist frequency
STEEPNESS = 20.0
ENERGY_FLOOR = 0.01
DEFAULT_THETA = 0.01
DEFAULT_MIN_REGION = 0.5  # seconds
DEFAULT_MIN_GAP = 1.0  # seconds
SHARPEN_REACH = 2.0  # seconds a border may move when sharpened


def window_length(samplerate: int) -> int:
    """The Hann window in samples: 4096 at 44.1 kHz, the same duration at other rates (even)."""
    return max(2, 2 * round(REFERENCE_WINDOW / 2 * samplerate / REFERENCE_RATE))


def envelope(signal: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``sqrt(max(x, 0)) * hann`` per frame; frame ``k`` is centred on sample ``k * window / 2``."""
    hop = window // 2
    frames = math.ceil(len(signal) / hop) + 1
    padded = np.zeros((frames - 1) * hop + window, dtype=np.float64)
    padded[hop : hop + len(signal)] = np.sqrt(np.maximum(signal, 0.0))
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1, window + 1) / (window + 1))
    views = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop]
    chunk = max(1, (1 << 22) // window)
    out = np.concatenate([views[i : i + chunk] @ hann for i in range(0, frames, chunk)])
    return out / window


def butter2_lowpass(cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of a 2nd-order Butterworth low-pass; ``cutoff`` relative to Nyquist (bilinear transform)."""
    k = math.tan(math.pi * cutoff / 2)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b = np.array([k * k, 2 * k * k, k * k]) * norm
    a = np.array([1.0, 2 * (k * k - 1) * norm, (1 - math.sqrt(2.0) * k + k * k) * norm])
    return b, a


def _biquad(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Filter each row of ``x`` (transposed direct form II), starting in the steady state of its first value."""
    gain = b.sum() / a.sum()
    z2 = (b[2] - a[2] * gain) * x[:, 0]
    z1 = (b[1] - a[1] * gain) * x[:, 0] + z2
    y = np.empty_like(x)
    for t in range(x.shape[1]):
        xt = x[:, t]
        yt = b[0] * xt + z1
        z1 = b[1] * xt - a[1] * yt + z2
        z2 = b[2] * xt - a[2] * yt
        y[:, t] = yt
    return y


def filtfilt(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Zero-phase filtering of each row: odd extension at both ends, forward pass, backward pass."""
    pad = min(3 * len(a), x.shape[1] - 1)
    if pad > 0:
        head = 2 * x[:, :1] - x[:, pad:0:-1]
        tail = 2 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        x = np.concatenate([head, x, tail], axis=1)
    y = _biquad(b, a, x)
    y = _biquad(b, a, y[:, ::-1])[:, ::-1]
    return y[:, pad : y.shape[1] - pad] if pad > 0 else y


def _stack(stems: Mapping[str, np.ndarray], sources: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The stems as one (stems, channels, frames) array: mono broadcast, shorter ones zero-padded."""
    names = [name for name in sources if name in stems]
    unknown = [name for name in stems if name not in sources]
    if unknown:
        raise InputError(f"stems for unknown sources {', '.join(unknown)}; the sources are {', '.join(sources)}")
    if not names:
        raise InputError("no stems given; give one audio file per source")
    arrays = [np.atleast_2d(np.asarray(stems[name], dtype=np.float64)) for name in names]
    channels = max(array.shape[0] for array in arrays)
    for name, array in zip(names, arrays):
        if array.shape[0] not in (1, channels):
            raise InputError(
                f"{name}: has {array.shape[0]} channels, the other stems {channels}; use mono or matching stems"
            )
    length = max(array.shape[1] for array in arrays)
    out = np.zeros((len(names), channels, length))
    for i, array in enumerate(arrays):
        out[i, :, : array.shape[1]] = array
    return names, out


def _analyse(
    stems: Mapping[str, np.ndarray], samplerate: int, theta: float, sources: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, normalised envelopes before smoothing, and confidences, both (stems, channels, frames)."""
    names, audio = _stack(stems, sources)
    window = window_length(samplerate)
    b, a = butter2_lowpass(LOWPASS_CUTOFF)
    raw, confidence = [], []
    for channel in range(audio.shape[1]):
        energy = np.stack([envelope(stem[channel], window) for stem in audio])
        total = energy.sum(axis=0)
        peak = total.max()
        normalised = len(names) * energy / peak if peak > 0 else energy
        normalised[:, total < ENERGY_FLOOR] = 0.0
        smooth = filtfilt(b, a, normalised)
        raw.append(normalised)
        confidence.append(0.5 * (1.0 + np.tanh(STEEPNESS * (smooth - theta) / 2)))  # the logistic, overflow-free
    return names, np.stack(raw, axis=1), np.stack(confidence, axis=1)


def activation_confidence(
    stems: Mapping[str, np.ndarray],
    samplerate: int,
    *,
    theta: float = DEFAULT_THETA,
    sources: Sequence[str] = DEFAULT_SOURCES,
) -> tuple[list[str], np.ndarray]:
    """The paper's confidence ``C`` in [0, 1], shaped (stems, channels, frames), with the stems' names.

    Frame ``k`` is centred on sample ``k * hop``, ``hop = window_length(samplerate) // 2``.
    """
    names, _, confidence = _analyse(stems, samplerate, theta, sources)
    return names, confidence


def _sharpen(run: tuple[int, int], above: np.ndarray, reach: int) -> tuple[int, int]:
    """Move a run's borders inwards (by at most ``reach`` frames) to where the unsmoothed envelope is above theta.

    The low-pass spreads every onset and offset by a few tenths of a second; the raw envelope shows where
    the sound really starts and stops. A run in which the raw envelope never exceeds theta is kept as is.
    """
    start, end = run
    inside = np.flatnonzero(above[start:end])
    if inside.size == 0:
        return run
    first, last = start + int(inside[0]), start + int(inside[-1]) + 1
    return (first if first - start <= reach else start, last if end - last <= reach else end)
def tidy_regions(
    regions: list[tuple[float, float]], duration: float, *, min_region: float, min_gap: float
) -> list[tuple[float, float]]:
    """Fill gaps shorter than ``min_gap`` (also before the first and after the last region), then drop
    regions shorter than ``min_region``."""
    filled: list[list[float]] = []
    for start, end in regions:
        if start < min_gap and not filled:
            start = 0.0
        if filled and start - filled[-1][1] < min_gap:
            filled[-1][1] = end
        else:
            filled.append([start, end])
    if filled and duration - filled[-1][1] < min_gap:
        filled[-1][1] = duration
    return [(start, end) for start, end in filled if end - start >= min_region]


def detect_activations(
    stems: Mapping[str, np.ndarray],
    samplerate: int,
    *,
    theta: float = DEFAULT_THETA,
    min_region: float = DEFAULT_MIN_REGION,
    min_gap: float = DEFAULT_MIN_GAP,
    sharpen: bool = True,
    sources: Sequence[str] = DEFAULT_SOURCES,
) -> Labels:
    """Activation labels from isolated stems ((channels, frames) arrays keyed by source name).

    ``sharpen`` moves each border (by up to ``SHARPEN_REACH`` seconds) from where the smoothed confidence
    crosses 0.5 to where the unsmoothed envelope crosses theta, which places borders within a frame or two of
    the true ones; ``sharpen=False, min_region=0, min_gap=0`` gives the paper's activations unchanged.
    Sources without a stem are unconstrained. Borders fall half a hop from frame centres, clipped to the song.
    """
    if not math.isfinite(theta) or theta <= 0:
        raise InputError(f"--theta {theta}: must be a positive number (the paper uses 0.01)")
    names, raw, confidence = _analyse(stems, samplerate, theta, sources)
    hop = window_length(samplerate) // 2
    reach = round(SHARPEN_REACH * samplerate / hop) if sharpen else 0
    length = max(np.atleast_2d(stems[name]).shape[-1] for name in names)
    duration = length / samplerate
    regions = {}
    for name, source_raw, source_confidence in zip(names, raw, confidence):
        above = (source_raw > theta).any(axis=0)
        sharpened = [_sharpen(run, above, reach) for run in runs((source_confidence > 0.5).any(axis=0))]
        spans = [
            (max(0.0, (a - 0.5) * hop / samplerate), min(duration, (b - 0.5) * hop / samplerate)) for a, b in sharpened
        ]
        regions[name] = tidy_regions(spans, duration, min_region=min_region, min_gap=min_gap)
    return labels_from_regions(regions, sources=sources, duration=duration, origin="stems")
