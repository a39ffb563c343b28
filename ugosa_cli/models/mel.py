"""The Slaney-style mel filterbank (librosa's ``filters.mel`` with its defaults), in numpy.

Mel-Band RoFormer splits the spectrum into the bands where these triangular filters are non-zero, so what
matters is which weights are positive: they are computed in float64 in the same order of operations as
librosa 0.11 (``htk=False``, ``norm="slaney"``, ``fmin=0``, ``fmax=sr/2``) and stored as float32, as it does.
"""

from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0  # where the logarithmic part starts
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: float) -> float:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    if hz >= _MIN_LOG_HZ:
        return float(_MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOG_STEP)
    return hz / _F_SP


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hz_to_mel`, element-wise (float64)."""
    mels = np.asarray(mels, dtype=np.float64)
    hz = _F_SP * mels
    high = mels >= _MIN_LOG_MEL
    hz[high] = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mels[high] - _MIN_LOG_MEL))
    return hz


def mel_filterbank(samplerate: float, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, area-normalised (Slaney)."""
    bins = np.fft.rfftfreq(n=n_fft, d=1.0 / samplerate)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(float(samplerate) / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for band in range(n_mels):
        rising = -ramps[band] / widths[band]
        falling = ramps[band + 2] / widths[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, np.newaxis]
    return weights


def mel_band_membership(samplerate: float, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) bool: which frequency bins each Mel-Band RoFormer band holds.

    The bins where a filter is positive, with the first bin forced into the first band and the last bin
    into the last (the filters leave the DC bin out, and the Nyquist bin's weight is within rounding of 0).
    """
    member = mel_filterbank(samplerate, n_fft, n_mels) > 0
    member[0, 0] = True
    member[-1, -1] = True
    return member
