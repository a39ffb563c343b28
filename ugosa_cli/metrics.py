"""Separation quality metrics: framewise BSSEval v4, the MDX challenge SDR, and the silent-frame PES/EPS.

Signals are float arrays shaped (channels, samples); a set of stems is (sources, channels, samples).

- BSSEval v4 (Vincent et al. 2006; v4 by Liutkus, Stöter and Ito, SiSEC 2018), the "images" variant that
  museval computes: distortion filters of 512 taps are fitted once on the whole track (each estimate
  projected onto the delayed copies of all references, and onto those of its own reference), then applied
  inside each evaluation frame to split the frame's error into spatial distortion, interference and
  artefacts. A frame in which any reference or any estimate is all zeros is skipped (NaN) for every source,
  as museval does (frame rule ``"museval"``); with ``"per-source"`` a frame is skipped only for the sources
  whose own reference or estimate is all zeros in it. Per source, the score of a track is the median over
  the frames that were not skipped.
- MDX SDR: ``10 log10((|s|^2 + d) / (|s - ŝ|^2 + d))`` over the whole track, ``d = 1e-7``.
- PES, "predicted energy at silence", and EPS, "energy at predicted silence" (Schulze-Forster et al.,
  "Weakly informed audio source separation", WASPAA 2019, as used by the UGOSA authors): per channel and
  frame, PES is ``10 log10(|ŝ|^2 + 1e-12)`` over the frames where the reference is all zeros and EPS is
  ``10 log10(|s|^2 + 1e-12)`` over the frames where the estimate is all zeros; each is the mean over those
  frames, then over channels. Lower is better for both. They use the same frames as BSSEval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ugosa_cli.errors import InputError, SettingError

FILTER_LENGTH = 512
MDX_DELTA = 1e-7
SILENCE_FLOOR = 1e-12
BSS_METRICS: tuple[str, ...] = ("SDR", "SIR", "ISR", "SAR")
FRAME_RULES: tuple[str, ...] = ("museval", "per-source")
METRICS: tuple[str, ...] = BSS_METRICS + ("MDX_SDR", "PES", "EPS")
_BLOCK_FFT = 1 << 15
# The shortest BSSEval frame and hop, in seconds: a frame not much longer than the 512-tap distortion filters (12 ms
# at 44.1 kHz, 64 ms at 8 kHz) scores little else, and each second of song is then scored at most ten times.
MIN_FRAME_SECONDS = 0.1


def frame_slices(length: int, window: int, hop: int) -> list[slice]:
    """The evaluation frames of a signal: whole windows every ``hop`` samples, or one frame if it is shorter."""
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if window >= length:
        return [slice(0, length)]
    count = (length - window + hop) // hop
    return [slice(i * hop, i * hop + window) for i in range(count)]


def _silent(stems: np.ndarray) -> np.ndarray:
    """For (sources, channels, samples): which sources are all zeros."""
    return np.logical_not(stems.reshape(stems.shape[0], -1).any(axis=1))


def _lagged_correlations(x: np.ndarray, ys: Sequence[np.ndarray], max_lag: int) -> np.ndarray:
    """``out[k, m, d] = sum_n x[k, n] * y[m, n + d]`` for d in 0..max_lag, with ``y`` the rows of all ``ys``.

    ``x`` is (K, T), each of ``ys`` is (M_i, T). Computed blockwise through the FFT, so memory stays flat
    for songs of any length.
    """
    length = x.shape[1]
    n_fft = max(_BLOCK_FFT, 1 << math.ceil(math.log2(2 * max_lag + 2)))
    block = n_fft - max_lag
    rows = sum(y.shape[0] for y in ys)
    spectra = np.zeros((x.shape[0], rows, n_fft // 2 + 1), dtype=np.complex128)
    for start in range(0, length, block):
        x_spec = np.fft.rfft(x[:, start : start + block], n=n_fft)
        y_block = np.concatenate([y[:, start : start + block + max_lag] for y in ys])
        spectra += np.conj(x_spec)[:, None, :] * np.fft.rfft(y_block, n=n_fft)[None, :, :]
    return np.fft.irfft(spectra, n=n_fft)[..., : max_lag + 1]


def _gram_matrix(auto: np.ndarray, filter_length: int) -> np.ndarray:
    """Inner products of all delayed reference channels: ((K*L), (K*L)) from ``auto`` (K, K, L).

    Row (k, t1), column (l, t2) holds ``sum_n x_k[n - t1] x_l[n - t2]``, i.e. ``auto[k, l, t1 - t2]``
    for t1 >= t2 and ``auto[l, k, t2 - t1]`` otherwise.
    """
    count = auto.shape[0]
    delays = np.arange(filter_length)
    lag = delays[:, None] - delays[None, :]
    forward = auto[:, :, np.maximum(lag, 0)]  # (K, K, L, L): auto[k, l, t1 - t2]
    backward = np.swapaxes(auto, 0, 1)[:, :, np.maximum(-lag, 0)]  # auto[l, k, t2 - t1]
    blocks = np.where(lag >= 0, forward, backward)
    return blocks.transpose(0, 2, 1, 3).reshape(count * filter_length, count * filter_length)


def _solve(gram: np.ndarray, rhs: np.ndarray, ridge: float = 0.0) -> np.ndarray:
    """Least-squares filters: solve ``gram @ c = rhs`` with museval's tiny ridge (plus ``ridge`` times the mean of
    the diagonal), lstsq if singular."""
    diagonal = np.finfo(float).eps + ridge * float(np.trace(gram)) / gram.shape[0]
    try:
        return np.linalg.solve(gram + diagonal * np.eye(gram.shape[0]), rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]


def _db(numerator: float, denominator: float) -> float:
    """10 log10 of an energy ratio: +inf for a zero denominator, -inf for a zero numerator."""
    if denominator == 0:
        return math.inf
    if numerator == 0:
        return -math.inf
    return 10 * math.log10(numerator / denominator)


def bss_eval_v4(
    references: np.ndarray,
    estimates: np.ndarray,
    window: int,
    hop: int,
    *,
    filter_length: int = FILTER_LENGTH,
    frame_rule: str = "museval",
) -> dict[str, np.ndarray]:
    """Framewise BSSEval v4 images metrics, museval's ``bss_eval`` with default v4 settings.

    ``references`` and ``estimates`` are (sources, channels, samples); ``window`` and ``hop`` in samples;
    ``frame_rule`` says which frames are skipped (see the module docstring).
    Returns ``{"SDR"|"SIR"|"ISR"|"SAR": (sources, frames)}`` in dB, NaN for skipped frames. A source whose
    reference or estimate is all zeros over the whole track gets NaN everywhere (museval refuses such input);
    its reference still counts as interference for the others when it is not silent itself.
    """
    return _bss_eval(references, estimates, (window, hop), filter_length, frame_rule, check=False)[0]


def _bss_eval(
    references: np.ndarray, estimates: np.ndarray, frame: tuple[int, int], filter_length: int, frame_rule: str,
    check: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """:func:`bss_eval_v4` (``frame``: its window and hop), and with ``check`` the same scores once more with the
    projection regularised, where that is worth checking (else ``None``).

    SIR, SAR and ISR project each estimate onto the delayed copies of the references. Where those copies are
    nearly linearly dependent (a band-limited stem, such as a synthetic bass with nothing above a few kHz), the
    projection's filters grow huge and cancel, and the scores depend on rounding: museval's own numbers then
    move by several dB when white noise 100 dB below the references is added to them. With ``check``, when some filter lives that far from the references' typical directions
    (:data:`CONDITIONING_SCREEN`), the scores are computed again with the Gram matrix of the references
    regularised as by white noise :data:`REGULARISATION_DB` below their level; a score that moves by more than
    :data:`UNRELIABLE_DB` then is unreliable (:func:`evaluate_stems` reports it so instead of printing it).
    """
    if references.shape != estimates.shape or references.ndim != 3:
        raise ValueError(f"expected two (sources, channels, samples) arrays, got {references.shape} and {estimates.shape}")
    if frame_rule not in FRAME_RULES:
        raise InputError(f"frame rule {frame_rule!r}: use one of {', '.join(FRAME_RULES)}")
    refs = np.asarray(references, dtype=np.float64)
    ests = np.asarray(estimates, dtype=np.float64)
    n_src, _, length = refs.shape
    frames = frame_slices(length, *frame)

    basis = np.flatnonzero(~_silent(refs))  # references that span the projection space
    scored = [int(j) for j in basis if ests[j].any()]
    if not scored:
        return {name: np.full((n_src, len(frames)), np.nan) for name in BSS_METRICS}, None
    system = _ProjectionSystem(refs, ests, basis, scored, filter_length)
    own_filters, all_filters = system.filters()
    scores = _frame_scores(refs, ests, frames, basis, scored, own_filters, all_filters, frame_rule)
    if not check or system.conditioning(own_filters, all_filters) <= CONDITIONING_SCREEN:
        return scores, None
    regularised = system.filters(ridge=10 ** (REGULARISATION_DB / 10))
    return scores, _frame_scores(refs, ests, frames, basis, scored, *regularised, frame_rule)


# How the reliability of SIR, SAR and ISR is checked (:func:`_bss_eval`). The screen: the ratio of a
# filter's energy times the references' mean energy per delayed channel to the energy of its projection; 1 for
# white references, about 1.5 for music-like test signals, 1e12 and more where the scores depend on rounding
# (the demo's synthetic stems). The check: the Gram matrix regularised as by white noise 100 dB below the
# references (below 16-bit quantisation), and a median that moves by more than 0.1 dB is unreliable.
CONDITIONING_SCREEN = 100.0
REGULARISATION_DB = -100.0
UNRELIABLE_DB = 0.1


def _frame_scores(
    refs: np.ndarray, ests: np.ndarray, frames: list[slice], basis: np.ndarray, scored: list[int],
    own_filters: np.ndarray, all_filters: np.ndarray, frame_rule: str,
) -> dict[str, np.ndarray]:
    """The framewise scores (sources, frames) of the ``scored`` estimates with given distortion filters."""
    filter_length = own_filters.shape[2]
    scores = {name: np.full((refs.shape[0], len(frames)), np.nan) for name in BSS_METRICS}
    n_fft = 1 << math.ceil(math.log2(frames[0].stop - frames[0].start + filter_length - 1))
    own_spec = np.fft.rfft(own_filters, n=n_fft, axis=2)  # (scored, chan, freq, chan)
    all_spec = np.fft.rfft(all_filters, n=n_fft, axis=2)  # (scored, basis*chan, freq, chan)
    position = np.searchsorted(basis, scored)  # where each scored source sits among the basis references
    for t, frame in enumerate(frames):
        ref_frame, est_frame = refs[:, :, frame][basis], ests[:, :, frame][scored]
        kept = ~_silent(ref_frame[position]) & ~_silent(est_frame)
        if (frame_rule == "museval" and (_silent(ref_frame).any() or not kept.all())) or not kept.any():
            continue
        span = frame.stop - frame.start + filter_length - 1
        ref_spec = np.fft.rfft(ref_frame, n=n_fft)  # (basis, chan, freq)
        own = np.fft.irfft(np.einsum("skf,skfc->scf", ref_spec[position], own_spec), n=n_fft)[..., :span]
        full = np.einsum("kf,skfc->scf", ref_spec.reshape(-1, ref_spec.shape[-1]), all_spec)
        full = np.fft.irfft(full, n=n_fft)[..., :span]
        target = _pad_to(ref_frame[position], span)
        estimate = _pad_to(est_frame, span)
        values = {
            "SDR": (_energy(target), _energy(estimate - target)),
            "ISR": (_energy(target), _energy(own - target)),
            "SIR": (_energy(own), _energy(full - own)),
            "SAR": (_energy(full), _energy(estimate - full)),
        }
        for metric, (numerator, denominator) in values.items():
            decibels = np.array([_db(n, d) for n, d in zip(numerator, denominator)])
            scores[metric][np.asarray(scored)[kept], t] = decibels[kept]
    return scores


def _energy(stems: np.ndarray) -> np.ndarray:
    """Energy of each stem of (stems, channels, samples)."""
    return np.sum(stems**2, axis=(1, 2))


def _pad_to(stems: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad the last axis to ``length``."""
    return np.pad(stems, [(0, 0)] * (stems.ndim - 1) + [(0, length - stems.shape[-1])])


class _ProjectionSystem:
    """The whole-track least-squares problems of the distortion filters: the Gram matrix of the basis references'
    delayed channels and, per scored estimate channel, its correlations with them.

    ``refs`` and ``ests`` hold every source; ``basis`` picks the references, ``scored`` the estimates.
    """

    def __init__(self, refs: np.ndarray, ests: np.ndarray, basis: np.ndarray, scored: list[int],
                 filter_length: int) -> None:
        n_src, n_chan, length = refs.shape
        self.basis, self.scored, self.channels, self.taps = basis, scored, n_chan, filter_length
        ref_rows = np.arange(n_src * n_chan).reshape(n_src, n_chan)
        ref_flat = refs.reshape(n_src * n_chan, length)
        corr = _lagged_correlations(ref_flat, [ref_flat, ests.reshape(n_src * n_chan, length)], filter_length - 1)
        basis_rows = ref_rows[basis].ravel()
        auto = corr[basis_rows][:, basis_rows]
        cross = corr[basis_rows][:, n_src * n_chan + ref_rows[scored].ravel()]
        self.gram = _gram_matrix(auto, filter_length)
        # cross[k, (j, c), t] = sum_n ref_k[n - t] est_j,c[n]: one right-hand side per estimate channel
        rhs = cross.reshape(len(basis) * n_chan, len(scored), n_chan, filter_length).transpose(0, 3, 1, 2)
        self.rhs = rhs.reshape(len(basis) * n_chan * filter_length, len(scored) * n_chan)

    def _own_rows(self, index: int) -> slice:
        """The Gram matrix's rows of scored estimate ``index``'s own reference."""
        size = self.channels * self.taps
        b = int(np.searchsorted(self.basis, self.scored[index]))
        return slice(b * size, (b + 1) * size)

    def filters(self, ridge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Filters (taps last but one, output channel last): ``own`` (scored, chan, L, chan), each estimate
        projected onto its own reference's delayed channels, and ``full`` (scored, basis*chan, L, chan), projected
        onto all basis references' delayed channels; ``ridge``: see :func:`_solve`."""
        n_chan, taps, count = self.channels, self.taps, len(self.scored)
        full = _solve(self.gram, self.rhs, ridge).reshape(len(self.basis) * n_chan, taps, count, n_chan)
        own = np.empty((count, n_chan, taps, n_chan))
        for i in range(count):
            rows = self._own_rows(i)
            own[i] = _solve(self.gram[rows, rows], self.rhs[rows, i * n_chan : (i + 1) * n_chan], ridge).reshape(
                n_chan, taps, n_chan
            )
        return own, full.transpose(2, 0, 1, 3)

    def conditioning(self, own: np.ndarray, full: np.ndarray) -> float:
        """How far from the references' typical directions the filters live: the largest, over the filters, of
        ``|c|^2 * mean(diag G) / (c' G c)`` (1 for white references; huge where the filters cancel)."""
        worst = 1.0
        for i in range(len(self.scored)):
            rows = self._own_rows(i)
            for gram, filters in ((self.gram, full[i]), (self.gram[rows, rows], own[i])):
                columns = filters.reshape(-1, self.channels)
                energy = float(np.sum(columns * (gram @ columns)))
                mean_diagonal = float(np.trace(gram)) / gram.shape[0]
                if energy > 0:
                    worst = max(worst, float(np.sum(columns**2)) * mean_diagonal / energy)
        return worst


def mdx_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """The MDX challenge SDR of one stem over the whole track, in dB (always finite)."""
    ref = np.asarray(reference, dtype=np.float64)
    error = ref - np.asarray(estimate, dtype=np.float64)
    return 10 * math.log10((float(np.sum(ref**2)) + MDX_DELTA) / (float(np.sum(error**2)) + MDX_DELTA))


def silent_frame_metrics(reference: np.ndarray, estimate: np.ndarray, window: int, hop: int) -> tuple[float | None, float | None]:
    """(PES, EPS) of one stem (channels, samples) in dB; None where no frame qualifies."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    frames = frame_slices(ref.shape[-1], window, hop)
    ref_energy = np.stack([np.sum(ref[:, f] ** 2, axis=-1) for f in frames], axis=-1)  # (channels, frames)
    est_energy = np.stack([np.sum(est[:, f] ** 2, axis=-1) for f in frames], axis=-1)
    ref_silent = np.stack([~ref[:, f].any(axis=-1) for f in frames], axis=-1)
    est_silent = np.stack([~est[:, f].any(axis=-1) for f in frames], axis=-1)
    return _mean_db_over_frames(est_energy, ref_silent), _mean_db_over_frames(ref_energy, est_silent)


def _mean_db_over_frames(energy: np.ndarray, selected: np.ndarray) -> float | None:
    """Mean over selected frames of each channel, then over the channels that have any; None if none do."""
    per_channel = [
        float(np.mean(10 * np.log10(energy[c, selected[c]] + SILENCE_FLOOR)))
        for c in range(energy.shape[0])
        if selected[c].any()
    ]
    return float(np.mean(per_channel)) if per_channel else None


def check_frames(win: float, hop: float) -> None:
    """Refuse a BSSEval frame length or hop (seconds) below :data:`MIN_FRAME_SECONDS` or not finite
    (:class:`SettingError` naming ``win`` or ``hop``), before any work."""
    for setting, seconds in (("win", win), ("hop", hop)):
        if not (math.isfinite(seconds) and seconds >= MIN_FRAME_SECONDS):
            raise SettingError(setting, seconds, f"use {MIN_FRAME_SECONDS:g} s or more (frames this short score little "
                               "more than the distortion filters, and shorter hops multiply the frames to score)")


def seconds_to_samples(seconds: float, samplerate: int) -> int:
    """A window or hop in samples, truncated as museval does; at least one sample."""
    return max(1, int(seconds * samplerate))


def evaluate_stems(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    samplerate: int,
    *,
    win: float = 1.0,
    hop: float = 1.0,
    frame_rule: str = "museval",
) -> dict:
    """Score estimated stems against references: every metric of ``METRICS`` per source, JSON-ready.

    Both mappings name the same sources; each array is (channels, samples), all of one shape. Returns
    ``{"sources": {name: {metric: dB or None}}, "mean": {metric: mean over sources or None},
    "skipped": [{"source", "metrics", "reason"}], "settings": {...}}``. BSSEval metrics are medians over
    frames (``frame_rule`` as in :func:`bss_eval_v4`); a value that cannot be computed (or MDX SDR of a
    silent reference) is None and the reason is listed under "skipped". PES and EPS are None when the
    reference (PES) or the estimate (EPS) is never silent; that is not listed. A ``win`` longer than the stems
    scores them as one frame, and ``settings["win"]`` is then their length: the window actually used.
    """
    names = list(references)
    if set(names) != set(estimates):
        missing = sorted(set(names) - set(estimates)) or sorted(set(estimates) - set(names))
        raise InputError(f"references and estimates name different sources (unmatched: {', '.join(missing)})")
    if not names:
        raise InputError("no sources to evaluate")
    shapes = {tuple(np.shape(references[n])) for n in names} | {tuple(np.shape(estimates[n])) for n in names}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"every stem must be one (channels, samples) shape; got {sorted(shapes)}")
    check_frames(win, hop)
    window = seconds_to_samples(win, samplerate)
    step = seconds_to_samples(hop, samplerate)
    refs = np.stack([np.asarray(references[n], dtype=np.float64) for n in names])
    ests = np.stack([np.asarray(estimates[n], dtype=np.float64) for n in names])
    framewise, regularised = _bss_eval(refs, ests, (window, step), FILTER_LENGTH, frame_rule)

    sources: dict[str, dict[str, float | None]] = {}
    skipped: list[dict] = []
    ref_silent, est_silent = _silent(refs), _silent(ests)
    for j, name in enumerate(names):
        row: dict[str, float | None] = {}
        row["MDX_SDR"] = None if ref_silent[j] else mdx_sdr(refs[j], ests[j])
        if ref_silent[j] or est_silent[j]:
            # With nothing to find, the SDRs would only measure the estimate's energy: that is what PES is for.
            left_out = [*BSS_METRICS, "MDX_SDR"] if ref_silent[j] else list(BSS_METRICS)
            row.update(dict.fromkeys(BSS_METRICS))
            which = "reference" if ref_silent[j] else "estimate"
            skipped.append({"source": name, "metrics": left_out, "reason": f"the {which} is silent throughout"})
        else:
            _median_scores(name, {m: framewise[m][j] for m in BSS_METRICS}, row, skipped,
                           None if regularised is None else {m: regularised[m][j] for m in BSS_METRICS})
        row["PES"], row["EPS"] = silent_frame_metrics(refs[j], ests[j], window, step)
        sources[name] = {metric: row[metric] for metric in METRICS}
    mean = {}
    for metric in METRICS:
        values = [value for value in (row[metric] for row in sources.values()) if value is not None]
        mean[metric] = float(np.mean(values)) if values else None
    settings = {
        "win": win if window < refs.shape[-1] else refs.shape[-1] / samplerate,  # the window used: the whole song
        "hop": hop,
        "samplerate": samplerate,
        "frames": len(frame_slices(refs.shape[-1], window, step)),
        "filter_length": FILTER_LENGTH,
        "frame_aggregate": "median",
        "frame_rule": frame_rule,
    }
    return {"sources": sources, "mean": mean, "skipped": skipped, "settings": settings}


def _median_scores(
    name: str, framewise: Mapping[str, np.ndarray], row: dict, skipped: list[dict],
    regularised: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Median over the frames that were not skipped; record why a median is missing, infinite or unreliable
    (it moves by more than :data:`UNRELIABLE_DB` with the projection ``regularised``, see :func:`_bss_eval`)."""
    kept = ~np.isnan(framewise["SDR"])
    if not kept.any():
        row.update(dict.fromkeys(BSS_METRICS))
        reason = "no frame where every reference and every estimate has sound (frames with a silent stem are skipped)"
        skipped.append({"source": name, "metrics": list(BSS_METRICS), "reason": reason})
        return
    moved: dict[str, float] = {}
    for metric, values in framewise.items():
        median = float(np.median(values[kept]))
        row[metric] = median if math.isfinite(median) else None
        if not math.isfinite(median):
            reason = f"median is {median:+} dB ({'no error of this kind' if median > 0 else 'nothing left of the reference'})"
            skipped.append({"source": name, "metrics": [metric], "reason": reason})
        elif regularised is not None:
            shift = abs(float(np.median(regularised[metric][kept])) - median)
            if not shift <= UNRELIABLE_DB:  # NaN too: the regularised value is no number
                moved[metric] = shift
    if moved:
        unreliable = {metric: row[metric] for metric in moved}
        row.update(dict.fromkeys(moved))
        reason = (
            "unreliable: the projection onto the references is ill-conditioned (their delayed copies are nearly "
            "linearly dependent: a band-limited stem, such as a synthetic one), and these "
            f"values move by up to {max(moved.values()):.1f} dB when the references change {-REGULARISATION_DB:.0f} dB "
            "below their level; SDR and MDX SDR do not depend on it"
        )
        skipped.append({"source": name, "metrics": list(moved), "reason": reason, "values": unreliable})
