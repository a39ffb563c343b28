"""A second, independent song generator, for tuning and checking what was chosen on the built-in one.

``ugosa_cli.demo.synth`` (the demo model's training and held-out songs) makes every sound from band-limited
wavetables, sample-placed drum hits and a few early reflections. Settings chosen on those songs only may
fit their sounds (the issue's case: the resplit guide and filter, chosen on synthesizer songs, cost 0.5 dB
on held-out recordings). This module shares no sound code with it:

- **drums**: an 808-style kit (sine kick with a long pitch drop and drive, or a noise thump), a snare of
  two drum modes plus band-passed noise, or a clap of staggered noise bursts, metallic hats from six
  inharmonic square waves, a shaker on sixteenths, toms in fills; velocities and timing humanised;
- **bass**: Karplus-Strong plucked strings (a delay line with a damped two-point average), an FM bass
  (modulation index decaying per note), or a saturated sine, through a cabinet low-pass at 1.2 to 3 kHz;
- **other**: Karplus-Strong guitar strums (six strings, each a few ms after the last, stereo double-
  tracked) and arpeggios, an FM electric piano (1:1 carrier and modulator, bell partial at 14x), or an
  additive organ with a slow tremolo and chorus;
- **vocals**: a glottal pulse train (Rosenberg pulses, jittered period) through three time-varying formant
  resonators (two-pole filters, vowels gliding into each other), vibrato that grows through each note,
  breath noise through the same formants, sibilant bursts at some onsets, phrases with breaths between
  them, sometimes a double a third above;
- **mix**: a stereo reverb per song (a convolution with exponentially decaying, decorrelated noise; RT60
  0.3 to 1.8 s; a different send per source), panning from centre to hard left/right, levels drawn over
  +-6 dB, a gentle bus compressor.

As in the paper's experiment, each source rests in one quarter of the song (``rests="quarters"``), or in
sections drawn at random (``rests="sections"``). Every stem is gated to its regions after the effects, with
20 ms fades just inside the borders, so the regions are the true activity. Needs numpy and scipy (the
test extras: ``pip install -e '.[test]'``).

Songs come back as :class:`ugosa_cli.demo.synth.Song` so that the benchmarks treat both generators alike.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ugosa_cli.demo.synth import SOURCES, Song

REST_LAYOUTS = ("quarters", "sections")
FADE = 0.02  # seconds
PEAK = 0.89
_SCALES = {False: (0, 2, 4, 5, 7, 9, 11), True: (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = ((0, 5, 3, 4), (0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 0, 4), (1, 4, 0, 0), (0, 6, 5, 4))
_VOWELS = {  # formant frequencies (Hz) and bandwidths of a, e, i, o, u, ae, er (male/female mix)
    "a": ((730, 1090, 2440), (90, 110, 160)),
    "e": ((530, 1840, 2480), (70, 100, 150)),
    "i": ((270, 2290, 3010), (50, 100, 170)),
    "o": ((570, 840, 2410), (80, 90, 150)),
    "u": ((300, 870, 2240), (60, 90, 140)),
    "ae": ((660, 1720, 2410), (90, 110, 150)),
    "er": ((490, 1350, 1690), (80, 100, 120)),
}


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 77, stream])  # 77: never the built-in generator's streams


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _pan(pan: float) -> np.ndarray:
    angle = (np.clip(pan, -1, 1) + 1) * math.pi / 4
    return np.array([math.cos(angle), math.sin(angle)]) * math.sqrt(2)


def _place(track: np.ndarray, start: float, sound: np.ndarray, rate: int) -> None:
    """Add ``sound`` (channels, n) or (n,) into ``track`` (2, frames) at ``start`` seconds."""
    first = int(round(start * rate))
    if first >= track.shape[1] or first + sound.shape[-1] <= 0:
        return
    sound = np.atleast_2d(sound)
    if first < 0:
        sound, first = sound[:, -first:], 0
    end = min(track.shape[1], first + sound.shape[-1])
    track[:, first:end] += sound[:, : end - first]


# --- instruments -----------------------------------------------------------------------------------


def _karplus(f0: float, seconds: float, rate: int, rng: np.random.Generator, *, damping: float,
             brightness: float) -> np.ndarray:
    """A plucked string: a noise burst circulating in a delay line of one period, averaged and damped."""
    period = max(2, int(round(rate / f0)))
    n = int(seconds * rate)
    burst = lfilter([brightness], [1, brightness - 1], rng.uniform(-1, 1, period))  # one-pole low-pass: a softer pick
    y = np.zeros(1 + n + period)  # y[0] is the sample before the burst
    y[1 : 1 + period] = burst
    for lo in range(1 + period, len(y), period):
        hi = min(lo + period, len(y))
        y[lo:hi] = damping * 0.5 * (y[lo - period : hi - period] + y[lo - period - 1 : hi - period - 1])
    y = y[1:]
    return y[:n]


def _fm(f0: float, seconds: float, rate: int, *, ratio: float, index: float, decay: float,
        bell: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    idx = index * np.exp(-t / decay)
    tone = np.sin(2 * np.pi * f0 * t + idx * np.sin(2 * np.pi * ratio * f0 * t))
    if bell:
        tone += bell * np.exp(-t / 0.15) * np.sin(2 * np.pi * 14 * f0 * t)
    return tone


def _adsr(n: int, rate: int, attack: float, decay: float, sustain: float, release: float, hold: float) -> np.ndarray:
    t = np.arange(n) / rate
    env = np.where(t < attack, t / max(attack, 1e-4), sustain + (1 - sustain) * np.exp(-(t - attack) / max(decay, 1e-3)))
    off = t > hold
    env[off] *= np.exp(-(t[off] - hold) / max(release, 1e-3))
    return env


def _bandpass_noise(rng: np.random.Generator, n: int, rate: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    gain = (f > low) * (f < high) * 1.0
    gain = np.convolve(gain, np.hanning(31) / np.hanning(31).sum(), mode="same")
    out = np.fft.irfft(spectrum * gain, n)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _kit(rng: np.random.Generator, rate: int) -> dict[str, np.ndarray]:
    kick_style = rng.integers(2)
    t = np.arange(int((0.9 if kick_style == 0 else 0.35) * rate)) / rate
    if kick_style == 0:  # 808: long sine with a pitch drop, driven
        f = rng.uniform(40, 55) + rng.uniform(80, 160) * np.exp(-t / rng.uniform(0.02, 0.06))
        kick = np.tanh(2.5 * np.sin(2 * np.pi * np.cumsum(f) / rate) * np.exp(-t / rng.uniform(0.25, 0.6)))
    else:  # thump: low-passed noise and a short body
        body = np.sin(2 * np.pi * rng.uniform(60, 90) * t) * np.exp(-t / 0.08)
        kick = body + 0.5 * _bandpass_noise(rng, len(t), rate, 30, 300) * np.exp(-t / 0.03)
    t = np.arange(int(0.45 * rate)) / rate
    if rng.random() < 0.6:
        modes = sum(np.sin(2 * np.pi * f * t) * np.exp(-t / 0.06) for f in rng.uniform(150, 420, 2))
        noise = _bandpass_noise(rng, len(t), rate, rng.uniform(800, 3000), rng.uniform(6000, 12000))
        snare = 0.5 * modes + 0.6 * noise * np.exp(-t / rng.uniform(0.08, 0.2))
    else:  # clap: three bursts 10 ms apart and a tail
        noise = _bandpass_noise(rng, len(t), rate, 700, 5000)
        env = sum(np.exp(-np.maximum(t - d, 0) / 0.008) * (t >= d) for d in (0, 0.011, 0.023))
        snare = noise * (0.5 * env + 0.4 * np.exp(-np.maximum(t - 0.03, 0) / 0.12) * (t >= 0.03))
    t = np.arange(int(0.5 * rate)) / rate
    metal = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0))
    spectrum = np.fft.rfft(metal)
    f = np.fft.rfftfreq(len(t), 1 / rate)
    metal = np.fft.irfft(spectrum * (f > rng.uniform(6000, 9000)), len(t))
    metal /= np.sqrt(np.mean(metal**2)) + 1e-12
    hat = 0.3 * metal * np.exp(-t / rng.uniform(0.02, 0.05))
    open_hat = 0.25 * metal * np.exp(-t / rng.uniform(0.15, 0.3))
    t = np.arange(int(0.12 * rate)) / rate
    shaker = 0.15 * _bandpass_noise(rng, len(t), rate, 4000, 14000) * np.sin(np.pi * np.minimum(t / 0.06, 1)) ** 2
    t = np.arange(int(0.6 * rate)) / rate
    tom = np.sin(2 * np.pi * np.cumsum(rng.uniform(90, 160) * (1 + 0.3 * np.exp(-t / 0.05))) / rate) * np.exp(-t / 0.2)
    return {"kick": kick, "snare": snare, "hat": hat, "open_hat": open_hat, "shaker": shaker, "tom": tom}


def _glottal(f0: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rosenberg glottal pulses at a time-varying pitch, differentiated (the radiated flow)."""
    phase = np.cumsum(f0 * (1 + 0.01 * rng.standard_normal(len(f0))) / rate)
    frac = phase - np.floor(phase)
    open_q, close_q = 0.4, 0.16
    pulse = np.where(frac < open_q, 0.5 * (1 - np.cos(np.pi * frac / open_q)),
                     np.where(frac < open_q + close_q, np.cos(np.pi * (frac - open_q) / (2 * close_q)), 0.0))
    return np.diff(pulse, prepend=0.0)


def _formants(source: np.ndarray, rate: int, tracks: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Parallel two-pole resonators whose centre frequencies follow ``tracks`` (per 256-sample block)."""
    out = np.zeros_like(source)
    block = 256
    for gain, (freqs, widths) in zip((1.0, 0.6, 0.3), tracks):
        state = np.zeros(2)
        for b in range(0, len(source), block):
            f, w = freqs[min(b // block, len(freqs) - 1)], widths[min(b // block, len(widths) - 1)]
            r = math.exp(-math.pi * w / rate)
            a1, a2 = -2 * r * math.cos(2 * math.pi * min(f, 0.45 * rate) / rate), r * r
            seg, state = lfilter([1 - r], [1, a1, a2], source[b : b + block], zi=state)
            out[b : b + block] += gain * seg
    return out


# --- arrangement and rendering ------------------------------------------------------------------------


def _regions(duration: float, beat: float, rests: str, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    if rests == "quarters":
        edges = [0.0] + [round(duration * q / 4 / beat) * beat for q in (1, 2, 3)] + [duration]
        order = rng.permutation(4)
        regions = {}
        for row, name in enumerate(SOURCES):
            quiet = int(np.flatnonzero(order == row)[0])
            spans = [(edges[q], edges[q + 1]) for q in range(4) if q != quiet]
            merged: list[tuple[float, float]] = []
            for a, b in spans:
                if merged and abs(merged[-1][1] - a) < 1e-9:
                    merged[-1] = (merged[-1][0], b)
                else:
                    merged.append((a, b))
            regions[name] = merged
        return regions
    bar = 4 * beat
    length = bar * rng.choice((1, 2))
    edges = list(np.arange(0.0, duration, length)) + [duration]
    if len(edges) > 3 and edges[-1] - edges[-2] < 0.5 * length:
        del edges[-2]
    sections = list(zip(edges[:-1], edges[1:]))
    active = rng.random((4, len(sections))) < 0.7
    for row in active:
        if row.all():
            row[rng.integers(len(sections))] = False
        if not row.any():
            row[rng.integers(len(sections))] = True
    regions = {}
    for row, name in enumerate(SOURCES):
        merged = []
        for (a, b), on in zip(sections, active[row]):
            if not on:
                continue
            if merged and abs(merged[-1][1] - a) < 1e-9:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        regions[name] = merged
    return regions


def _gate(regions: list[tuple[float, float]], frames: int, rate: int) -> np.ndarray:
    gate = np.zeros(frames)
    fade = int(FADE * rate)
    for start, end in regions:
        a, b = int(round(start * rate)), min(frames, int(round(end * rate)))
        gate[a:b] = 1.0
        width = min(fade, (b - a) // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, width + 1) / (width + 1))
        gate[a : a + width] = ramp
        gate[b - width : b] = ramp[::-1]
    return gate


def _reverb(rng: np.random.Generator, rate: int) -> np.ndarray:
    rt60 = rng.uniform(0.3, 1.8)
    n = int(min(2.5, 1.2 * rt60) * rate)
    t = np.arange(n) / rate
    decay = np.exp(-6.9 * t / rt60)
    ir = rng.standard_normal((2, n)) * decay
    ir[:, : int(0.012 * rate)] = 0  # pre-delay
    spectrum = np.fft.rfft(ir, axis=1)
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= 1 / np.sqrt(1 + (f / rng.uniform(3000, 9000)) ** 2)  # darker tail
    ir = np.fft.irfft(spectrum, n, axis=1)
    return ir / np.sqrt(np.sum(ir**2) / 2)


def generate(seed: int, *, duration: float = 16.0, samplerate: int = 44100, rests: str = "quarters") -> Song:
    """One stereo song (stems that sum to the mix, and their regions), deterministic in ``seed``."""
    if rests not in REST_LAYOUTS:
        raise ValueError(f"rests {rests!r}: use one of {REST_LAYOUTS}")
    rate = samplerate
    frames = int(round(duration * rate))
    arr = _rng(seed, 0)
    tempo = float(arr.uniform(72, 150))
    beat = 60 / tempo
    root = int(arr.integers(12))
    minor = bool(arr.random() < 0.5)
    scale = _SCALES[minor]
    progression = _PROGRESSIONS[arr.integers(len(_PROGRESSIONS))]
    bars = math.ceil(duration / (4 * beat)) + 1
    chords = [[scale[(progression[b % 4] + s) % 7] + 12 * ((progression[b % 4] + s) // 7) for s in (0, 2, 4)]
              for b in range(bars)]
    regions = _regions(frames / rate, beat, rests, arr)
    snd = _rng(seed, 1)
    swing = arr.uniform(0, 0.12)
    tracks = {name: np.zeros((2, frames)) for name in SOURCES}

    # drums
    kit = _kit(snd, rate)
    pattern = arr.integers(3)
    step = beat / 4
    pans = {"kick": 0.0, "snare": snd.uniform(-0.2, 0.2), "hat": snd.uniform(-0.7, 0.7), "open_hat": 0.0,
            "shaker": snd.uniform(-0.8, 0.8), "tom": snd.uniform(-0.6, 0.6)}
    pans["open_hat"] = pans["hat"]
    use_shaker = arr.random() < 0.5
    for bar in range(bars):
        for s in range(16):
            time = bar * 16 * step + s * step + (swing * step if s % 2 else 0) + arr.normal(0, 0.004)
            hits = []
            if (pattern == 0 and s in (0, 10)) or (pattern == 1 and s % 4 == 0) or (pattern == 2 and s in (0, 3, 8, 11)):
                hits.append(("kick", arr.uniform(0.85, 1.0)))
            if s in (4, 12) or (bar % 4 == 3 and s in (13, 15) and arr.random() < 0.6):
                hits.append(("snare", arr.uniform(0.8, 1.0) * (1 if s in (4, 12) else 0.6)))
            if s % 2 == 0:
                hits.append(("hat" if s != 14 or arr.random() < 0.5 else "open_hat", arr.uniform(0.5, 0.9)))
            if use_shaker:
                hits.append(("shaker", arr.uniform(0.4, 0.9)))
            if bar % 8 == 7 and s >= 8 and s % 2 == 0:
                hits.append(("tom", arr.uniform(0.6, 0.9)))
            for piece, vel in hits:
                _place(tracks["drums"], time, vel * _pan(pans[piece])[:, None] * kit[piece], rate)

    # bass
    bass_style = arr.integers(3)
    bass_pan = snd.uniform(-0.15, 0.15)
    for bar in range(bars):
        base = 28 + (root + chords[bar][0] - 28) % 12
        notes = [(0, 1.5, 0), (1.5, 0.5, 0), (2, 1, 7), (3, 1, 12)] if arr.random() < 0.5 else [(i * 0.5, 0.45, 0) for i in range(8)]
        for onset, length, interval in notes:
            f0 = _hz(base + interval)
            seconds = length * beat + 0.1
            if bass_style == 0:
                tone = _karplus(f0, seconds, rate, snd, damping=0.996, brightness=0.15)
            elif bass_style == 1:
                tone = _fm(f0, seconds, rate, ratio=1.0, index=3.0, decay=0.12)
            else:
                t = np.arange(int(seconds * rate)) / rate
                tone = np.tanh(1.8 * np.sin(2 * np.pi * f0 * t))
            tone = tone * _adsr(len(tone), rate, 0.004, 0.3, 0.6, 0.04, length * beat)
            _place(tracks["bass"], bar * 4 * beat + onset * beat, arr.uniform(0.8, 1) * _pan(bass_pan)[:, None] * tone, rate)

    cab = snd.uniform(1200, 3000)  # the bass amp's cabinet: a low-pass
    spectrum = np.fft.rfft(tracks["bass"], axis=1)
    spectrum /= np.sqrt(1 + (np.fft.rfftfreq(frames, 1 / rate) / cab) ** 4)
    tracks["bass"] = np.fft.irfft(spectrum, frames, axis=1)

    # other
    other_style = arr.integers(3)
    for bar in range(bars):
        pitches = [48 + (root + c - 48) % 12 + 12 * (i // 3) for i, c in enumerate(chords[bar] * 2)]
        start = bar * 4 * beat
        if other_style == 0:  # strummed or picked guitar, double-tracked left and right
            for side, pan in ((0, -0.8), (1, 0.8)):
                strums = (0, 1.5, 2.5, 3) if arr.random() < 0.6 else tuple(i * 0.5 for i in range(8))
                for k, onset in enumerate(strums):
                    order = pitches if k % 2 == 0 else pitches[::-1]
                    for j, p in enumerate(order if len(strums) == 4 else [order[k % len(order)]]):
                        tone = _karplus(_hz(p), 1.2 * beat, rate, snd, damping=0.994, brightness=0.7)
                        when = start + onset * beat + j * 0.008 + side * 0.012 + arr.normal(0, 0.003)
                        _place(tracks["other"], when, 0.35 * _pan(pan)[:, None] * tone, rate)
        elif other_style == 1:  # FM electric piano
            for onset, length in ((0, 1.5), (1.5, 1), (2.5, 1.5)):
                for p in pitches[:4]:
                    n = (length * beat + 0.3)
                    tone = _fm(_hz(p), n, rate, ratio=1.0, index=1.8, decay=0.4, bell=0.2)
                    tone *= _adsr(len(tone), rate, 0.003, 0.8, 0.3, 0.15, length * beat)
                    pan = -0.5 + (p - 48) / 24
                    _place(tracks["other"], start + onset * beat, 0.25 * _pan(pan)[:, None] * tone, rate)
        else:  # organ with tremolo and a chorus
            n = int(4 * beat * rate)
            t = np.arange(n) / rate
            tone = np.zeros((2, n))
            for p in pitches[:4]:
                f0 = _hz(p)
                for harmonic, amp in ((1, 1.0), (2, 0.6), (3, 0.3), (4, 0.25), (6, 0.1)):
                    for ch, detune in ((0, 0.997), (1, 1.003)):
                        tone[ch] += amp * np.sin(2 * np.pi * f0 * harmonic * detune * t + ch)
            tone *= (1 + 0.2 * np.sin(2 * np.pi * 5.5 * t)) * _adsr(n, rate, 0.03, 0.1, 1.0, 0.05, 4 * beat - 0.05)
            _place(tracks["other"], start, 0.08 * tone, rate)

    # vocals: phrases of notes with breaths between, vowels gliding, a double sometimes
    voc = _rng(seed, 2)
    formant_shift = voc.uniform(0.9, 1.25)
    base = 57 + (root - 57) % 12 + (12 if voc.random() < 0.4 else 0) - 12 * (voc.random() < 0.2)
    notes = []
    time = 0.0
    while time < frames / rate:
        phrase_end = time + voc.choice((2, 3, 4)) * 4 * beat * voc.uniform(0.6, 0.9)
        while time < phrase_end:
            length = voc.choice((0.5, 1, 1, 1.5, 2)) * beat
            degree = int(voc.integers(-2, 8))
            pitch = base + scale[degree % 7] + 12 * (degree // 7)
            notes.append((time, length * 0.95, pitch, voc.choice(list(_VOWELS))))
            time += length
        time += voc.uniform(0.3, 1.0) * beat * 2  # a breath
    doubled = voc.random() < 0.35
    vib_rate, vib_depth = voc.uniform(4.5, 6.5), voc.uniform(15, 60)
    voice = np.zeros(frames)
    double = np.zeros(frames)
    for onset, length, pitch, vowel in notes:
        n = int((length + 0.08) * rate)
        t = np.arange(n) / rate
        glide = -60 * np.exp(-t / 0.05)
        vibrato = vib_depth * np.minimum(1, t / max(0.35 * length, 0.05)) * np.sin(2 * np.pi * vib_rate * t)
        for target, interval in ((voice, 0), (double, 3 if doubled else None)):
            if interval is None:
                continue
            f0 = _hz(pitch + interval) * 2 ** ((glide + vibrato) / 1200)
            source = _glottal(f0, rate, voc) + 0.05 * voc.standard_normal(n)
            start_v, end_v = _VOWELS[vowel], _VOWELS[voc.choice(list(_VOWELS))]
            blocks = n // 256 + 1
            mix_t = np.clip(np.linspace(-0.5, 1.5, blocks), 0, 1)
            tracks_f = [(formant_shift * ((1 - mix_t) * a + mix_t * b), (1 - mix_t) * wa + mix_t * wb)
                        for a, b, wa, wb in zip(start_v[0], end_v[0], start_v[1], end_v[1])]
            sung = _formants(source, rate, tracks_f)
            if voc.random() < 0.2:  # a sibilant onset
                hiss = _bandpass_noise(voc, int(0.08 * rate), rate, 4000, 11000) * 0.3
                sung[: len(hiss)] += hiss * np.linspace(1, 0, len(hiss))
            env = _adsr(n, rate, 0.03, 0.2, 0.85, 0.05, length)
            first = int(round(onset * rate))
            end = min(frames, first + n)
            if first < frames:
                target[first:end] += (sung * env)[: end - first] * (0.6 if interval else 1.0)
    vocal_pan = voc.uniform(-0.1, 0.1)
    tracks["vocals"] = _pan(vocal_pan)[:, None] * voice + (_pan(0.5)[:, None] * double if doubled else 0)

    # mix: reverb sends, gating to the regions, levels, a bus compressor
    ir = _reverb(snd, rate)
    sends = {"drums": snd.uniform(0.05, 0.25), "bass": snd.uniform(0.0, 0.08), "other": snd.uniform(0.15, 0.5),
             "vocals": snd.uniform(0.2, 0.6)}
    levels = {"drums": 0.0, "bass": -1.0, "other": -4.0, "vocals": -1.0}
    stems = {}
    for name in SOURCES:
        dry = tracks[name]
        wet = np.stack([fftconvolve(dry[c], ir[c])[:frames] for c in range(2)])
        track = (dry + sends[name] * wet) * _gate(regions[name], frames, rate)
        rms = math.sqrt(float(np.mean(track[:, _gate(regions[name], frames, rate) > 0.5] ** 2)) + 1e-20)
        level = levels[name] + snd.uniform(-6, 6)
        stems[name] = track * (10 ** (level / 20) / rms)
    mix = sum(stems.values())
    envelope = np.convolve(np.abs(mix).mean(axis=0), np.ones(int(0.05 * rate)) / int(0.05 * rate), mode="same")
    threshold = np.percentile(envelope, 70)
    gain = np.where(envelope > threshold, (threshold / np.maximum(envelope, 1e-9)) ** 0.4, 1.0)
    stems = {name: stem * gain for name, stem in stems.items()}
    peak = max(float(np.abs(sum(stems.values())).max()), *(float(np.abs(s).max()) for s in stems.values()))
    stems = {name: (stem * (PEAK / peak)).astype(np.float32) for name, stem in stems.items()}
    snapped = {name: [(round(a * rate) / rate, round(b * rate) / rate) for a, b in spans] for name, spans in regions.items()}
    return Song(stems=stems, samplerate=rate, regions=snapped, tempo=tempo,
                key=f"{root} {'minor' if minor else 'major'}", seed=seed, timbre=float("nan"), rests=rests)


if __name__ == "__main__":  # write one song for listening: python benchmarks/other_songs.py SEED OUT_DIR
    from ugosa_cli.demo.synth import write_song

    song = generate(int(sys.argv[1]))
    print(write_song(song, Path(sys.argv[2])))
