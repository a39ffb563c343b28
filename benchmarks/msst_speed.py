"""BS-RoFormer, Mel-Band RoFormer and SCNet: ugosa's separation against msst 0.1.0's own, same weights, same clip.

    python benchmarks/msst_speed.py --size full --song 30          # released sizes, a 30 s clip (hours on a CPU)
    python benchmarks/msst_speed.py --size medium --song 10        # smaller widths, real rates and chunks
    python benchmarks/msst_speed.py --size full --memory --minutes 10   # peak memory of a 10-minute song
    python benchmarks/msst_speed.py --size full --train-step       # seconds of one training step per cut
    python benchmarks/msst_speed.py --tiny                         # a small model of each type (CI smoke test)

Each type is built by msst's own loader from its configuration (the released one with ``--size full``:
viperx's BS-RoFormer ``model_bs_roformer_ep_317_sdr_12.9755``, KimberleyJensen's vocal Mel-Band RoFormer,
MSST's SCNet-large; ``medium`` keeps their sample rate, STFT and chunking with narrower, shallower networks),
its norms perturbed, saved as MSST checkpoints are, and loaded by ugosa through ``--model``/``--config``.
Speed: msst's ``demix`` and ugosa's separation (``separate_array``, what ``ugosa separate`` runs) on the same
stereo 44.1 kHz clip, alternating, ``--repeats`` times; process CPU seconds and wall seconds per second of
audio, and the largest difference between their stems. ``--memory``: the peak resident memory of
``ugosa separate`` on an N-minute song (child process, ``ru_maxrss``) against that of msst's ``demix`` on the
same song in a child process, each above the memory of loading the model alone (the song is 44.1 kHz stereo;
``--size tiny`` runs the tiny networks at that rate: the song-sized memory is the same for any network). ``--train-step``: one
adaptation step per cut point on one window (CPU seconds of the frozen prefix, of a step, of a forward).
Torch runs ``--threads`` threads (default 2); ``OMP_WAIT_POLICY=PASSIVE`` steadies the figures on a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from reference import MSST_DIR, import_msst, msst_model_files

TYPES = ("bs_roformer", "mel_band_roformer", "scnet")
RATE = 44100
_BANDS = (2,) * 24 + (4,) * 12 + (12,) * 8 + (24,) * 8 + (48,) * 8 + (128, 129)
_ROFORMER = {"stereo": True, "num_stems": 1, "time_transformer_depth": 1, "freq_transformer_depth": 1,
             "dim_head": 64, "heads": 8, "attn_dropout": 0.0, "ff_dropout": 0.0, "flash_attn": True,
             "stft_n_fft": 2048, "stft_hop_length": 441, "stft_win_length": 2048, "stft_normalized": False,
             "mask_estimator_depth": 2}
_SCNET = {"sources": ["drums", "bass", "other", "vocals"], "audio_channels": 2, "nfft": 4096, "hop_size": 1024,
          "win_size": 4096, "normalized": True, "band_SR": [0.225, 0.372, 0.403], "band_stride": [1, 4, 16],
          "band_kernel": [3, 4, 16], "conv_depths": [3, 2, 1], "compress": 4, "conv_kernel": 3, "expand": 1}
# The model sections of the released configurations (and narrower, shallower ones of the same structure).
MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bs_roformer": {**_ROFORMER, "dim": 512, "depth": 12, "freqs_per_bands": _BANDS},
        "mel_band_roformer": {**_ROFORMER, "dim": 384, "depth": 6, "num_bands": 60, "sample_rate": RATE},
        "scnet": {**_SCNET, "dims": [4, 64, 128, 256], "num_dplayer": 6},
    },
    "medium": {
        "bs_roformer": {**_ROFORMER, "dim": 128, "depth": 3, "heads": 4, "freqs_per_bands": _BANDS},
        "mel_band_roformer": {**_ROFORMER, "dim": 128, "depth": 2, "heads": 4, "num_bands": 60, "sample_rate": RATE},
        "scnet": {**_SCNET, "dims": [4, 32, 64, 128], "num_dplayer": 2},
    },
    "tiny": {
        "bs_roformer": {**_ROFORMER, "dim": 32, "depth": 1, "heads": 2, "dim_head": 16, "stft_n_fft": 256,
                        "stft_hop_length": 64, "stft_win_length": 256, "freqs_per_bands": (4,) * 8 + (8,) * 8 + (33,)},
        "mel_band_roformer": {**_ROFORMER, "dim": 32, "depth": 1, "heads": 2, "dim_head": 16, "stft_n_fft": 256,
                              "stft_hop_length": 64, "stft_win_length": 256, "num_bands": 16, "sample_rate": 8000},
        "scnet": {**_SCNET, "dims": [4, 8, 16, 32], "nfft": 512, "hop_size": 128, "win_size": 512, "num_dplayer": 2},
    },
}
# audio.chunk_size, inference.num_overlap and inference.batch_size of the released configurations.
CHUNKING = {"bs_roformer": (352800, 2, 4), "mel_band_roformer": (352800, 2, 4), "scnet": (485100, 4, 8)}


def configuration(kind: str, size: str, rate: int | None = None) -> dict[str, Any]:
    """An MSST configuration of ``kind`` at ``size`` (tiny: one-second chunks at ``rate``, default 8 kHz)."""
    rate = rate or (8000 if size == "tiny" else RATE)
    # tiny: a second, in whole STFT hops (msst's Mel-Band RoFormer returns whole hops only)
    chunk, overlap, batch = (rate // 64 * 64, 2, 4) if size == "tiny" else CHUNKING[kind]
    vocal = kind != "scnet"
    return {
        "audio": {"chunk_size": chunk, "num_channels": 2, "sample_rate": rate, "min_mean_abs": 0.0},
        "model": MODELS[size][kind],
        "training": {"instruments": ["vocals", "other"] if vocal else list(_SCNET["sources"]),
                     "target_instrument": "vocals" if vocal else None, "use_amp": True},
        "inference": {"batch_size": batch, "num_overlap": overlap},
    }


def write_model(folder: Path, kind: str, size: str, rate: int | None = None) -> tuple[Path, Path, Any, Any]:
    """msst's model of the configuration (norms perturbed), its YAML and weights; returns both paths,
    msst's model and msst's loaded configuration."""
    return msst_model_files(folder, kind, configuration(kind, size, rate), TYPES.index(kind))


def song(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A stereo clip: two tones with vibrato and noise, (2, frames) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 220 * t + 3 * np.sin(2 * np.pi * 5 * t)) + 0.1 * np.sin(2 * np.pi * 55 * t)
    mix = np.stack([tone + 0.03 * rng.standard_normal(t.shape), 0.8 * tone + 0.03 * rng.standard_normal(t.shape)])
    return mix.astype(np.float32)


def timed(runs: dict[str, Callable[[], np.ndarray]], repeats: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Alternate the runs ``repeats`` times; wall and process CPU seconds of each, and the last outputs."""
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in runs}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            began_wall, began_cpu = time.perf_counter(), time.process_time()
            outputs[name] = run()
            times[name]["wall"].append(time.perf_counter() - began_wall)
            times[name]["cpu"].append(time.process_time() - began_cpu)
    return times, outputs


def speed(kind: str, size: str, seconds: float, repeats: int, folder: Path) -> dict[str, Any]:
    msst = import_msst()
    from ugosa_cli.checkpoint import MSSTSource, read_model
    from ugosa_cli.separation import separate_array

    config_path, weights, theirs, config = write_model(folder, kind, size)
    ours, _ = read_model(weights, MSSTSource(config_path))
    mix = song(seconds, ours.samplerate)

    def reference() -> np.ndarray:
        with torch.no_grad():
            stems = msst.demix(config, theirs, mix, "cpu", kind)
        return np.stack(list(stems.values()))

    times, outputs = timed({"msst 0.1.0": reference, "ugosa": lambda: separate_array(ours, mix)}, repeats)
    outputs["ugosa"] = outputs["ugosa"][: outputs["msst 0.1.0"].shape[0]]  # a target model's rest is ugosa's own
    return {
        "type": kind, "size": size, "parameters": sum(p.numel() for p in ours.parameters()), "seconds": seconds,
        "per_audio_second": {name: {unit: round(min(values) / seconds, 3) for unit, values in spent.items()}
                             for name, spent in times.items()},
        "median_cpu_per_audio_second": {name: round(statistics.median(spent["cpu"]) / seconds, 3)
                                        for name, spent in times.items()},
        "max_abs_diff": float(np.abs(outputs["ugosa"] - outputs["msst 0.1.0"]).max()),
    }


# --- memory -------------------------------------------------------------------------------------------------


_MSST_CHILD = """
import sys, numpy as np, soundfile as sf, torch
sys.path.append(sys.argv[1])
from msst.utils.settings import get_model_from_config
from msst.utils.model_utils import demix
torch.set_num_threads(int(sys.argv[5]))
model, config = get_model_from_config(sys.argv[2], sys.argv[3])
model.load_state_dict(torch.load(sys.argv[4], map_location="cpu")["state_dict"])
if len(sys.argv) > 6:
    mix, _ = sf.read(sys.argv[6], dtype="float32", always_2d=True)
    with torch.no_grad():
        demix(config, model.eval(), mix.T, "cpu", sys.argv[2])
"""


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` alone in a child; its peak RSS in MB and its wall seconds."""
    began = time.perf_counter()
    pid = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed (status {status})")
    return usage.ru_maxrss / 1024, time.perf_counter() - began


def memory(kind: str, size: str, minutes: float, threads: int, folder: Path) -> dict[str, Any]:
    import soundfile as sf

    rate = RATE  # the song-sized memory is that of a 44.1 kHz song, whatever the model's size
    config_path, weights, _, _ = write_model(folder, kind, size, rate)
    path = folder / "song.wav"
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as handle:
        for start in range(0, int(minutes * 60), 10):
            handle.write(song(min(10.0, minutes * 60 - start), rate, seed=start).T)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    ugosa = [sys.executable, "-m", "ugosa_cli"]
    model = ["--model", str(weights), "--config", str(config_path), "--offline"]
    baseline, _ = peak_rss_mb([*ugosa, "strategies", *model], env)
    peak, wall = peak_rss_mb([*ugosa, "separate", str(path), *model, "-o", str(folder / "out"), "-q"], env)
    child = [sys.executable, "-c", _MSST_CHILD, str(MSST_DIR), kind, str(config_path), str(weights), str(threads)]
    msst_baseline, _ = peak_rss_mb(child, env)
    msst_peak, msst_wall = peak_rss_mb([*child, str(path)], env)
    return {"type": kind, "size": size, "minutes": minutes,
            "ugosa": {"peak_rss_mb": round(peak), "model_alone_mb": round(baseline), "wall_seconds": round(wall)},
            "msst 0.1.0": {"peak_rss_mb": round(msst_peak), "model_alone_mb": round(msst_baseline),
                           "wall_seconds": round(msst_wall)}}


# --- one training step --------------------------------------------------------------------------------------


def train_steps(kind: str, size: str, window: float, folder: Path, cuts: tuple[int, ...] = (1, 2, 3, 4, 5)
                ) -> dict[str, Any]:
    """CPU seconds of the frozen prefix, of one training step (P-Lk:D, anchor off) and of a forward, per cut."""
    from ugosa_cli.adaptation import AdaptationSettings, Adapter
    from ugosa_cli.checkpoint import MSSTSource, read_model
    from ugosa_cli.models import family_of
    from ugosa_cli.strategy import Strategy, count_trainable

    config_path, weights, _, _ = write_model(folder, kind, size)
    model, _ = read_model(weights, MSSTSource(config_path))
    mix = song(window, model.samplerate)
    activations = np.ones((len(model.sources), mix.shape[1]), np.float32)
    activations[:, : mix.shape[1] // 3] = 0.0
    activations[0, : mix.shape[1] // 3] = 1.0  # the first source plays alone in the first third
    rows = []
    for cut in (cut for cut in family_of(model).cuts(model) if cut in cuts):
        strategy = Strategy.parse(f"P-L{cut}:D")
        settings = AdaptationSettings(strategy=strategy, window=window, epochs=1, anchor=0.0)
        adapter = Adapter(model, mix, activations, settings)
        began = time.process_time()
        step, prefix, forward = adapter.measure(steps=1)
        rows.append({"strategy": strategy.name, "trainable_parameters": count_trainable(model, strategy),
                     "wall": {"prefix": round(prefix, 1), "step": round(step, 1), "forward": round(forward, 1)},
                     "cpu_seconds_all": round(time.process_time() - began, 1),
                     "relative_cost": [round(x, 2) for x in family_of(model).relative_cost(
                         model, cut, recompute=adapter.split.recompute if adapter.split else False)]})
    return {"type": kind, "size": size, "window": window, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default=",".join(TYPES), help="comma-separated model types")
    parser.add_argument("--size", choices=("full", "medium", "tiny"), default="full")
    parser.add_argument("--song", type=float, default=30.0, help="clip length in seconds (speed)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--memory", action="store_true", help="peak memory on a --minutes song instead of speed")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--train-step", action="store_true", help="one training step per cut instead of speed")
    parser.add_argument("--window", type=float, default=10.0, help="training window in seconds (--train-step)")
    parser.add_argument("--cuts", default="1,2,3,4,5", help="cut points to time (--train-step), e.g. 5 for P-L5:D")
    parser.add_argument("--tiny", action="store_true", help="= --size tiny --song 3 (CI smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per type")
    args = parser.parse_args()
    if args.tiny:
        args.size, args.song = "tiny", 3.0
    torch.set_num_threads(args.threads)
    for kind in (name.strip() for name in args.types.split(",")):
        if kind not in TYPES:
            raise SystemExit(f"--types: {kind!r} is not one of {', '.join(TYPES)}")
        with tempfile.TemporaryDirectory(prefix="ugosa-msst-") as scratch:
            if args.memory:
                result = memory(kind, args.size, args.minutes, args.threads, Path(scratch))
            elif args.train_step:
                cuts = tuple(int(cut) for cut in args.cuts.split(","))
                result = train_steps(kind, args.size, args.window, Path(scratch), cuts)
            else:
                result = speed(kind, args.size, args.song, args.repeats, Path(scratch))
        print(json.dumps(result) if args.json else _text(result), flush=True)


def _text(result: dict[str, Any]) -> str:
    head = f"{result['type']} ({result['size']})"
    if "rows" in result:
        rows = "; ".join(f"{row['strategy']} #TP {row['trainable_parameters']:,}: prefix {row['wall']['prefix']} s, "
                         f"step {row['wall']['step']} s, forward {row['wall']['forward']} s" for row in result["rows"])
        return f"{head}, one {result['window']:g} s window (wall seconds): {rows}"
    if "minutes" in result:
        ours, theirs = result["ugosa"], result["msst 0.1.0"]
        return (f"{head}, {result['minutes']:g} min song: ugosa separate peak {ours['peak_rss_mb']} MB (model alone "
                f"{ours['model_alone_mb']} MB), msst demix peak {theirs['peak_rss_mb']} MB (model alone "
                f"{theirs['model_alone_mb']} MB)")
    speeds = ", ".join(f"{name} {values['cpu']} CPU s / {values['wall']} wall s"
                       for name, values in result["per_audio_second"].items())
    return (f"{head}, {result['parameters']:,} parameters, {result['seconds']:g} s clip, per second of audio: "
            f"{speeds}; largest stem difference {result['max_abs_diff']:.1e}")


if __name__ == "__main__":
    main()
