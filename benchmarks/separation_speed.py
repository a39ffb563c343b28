"""Separation speed: ugosa against demucs 2.0.3's ConvTasNet + apply_model, same weights, same clip, one run.

    python benchmarks/separation_speed.py                 # full-size tasnet, 30 s stereo clip
    python benchmarks/separation_speed.py --tiny          # a small model and a 2 s clip (CI smoke test)

Runs alternate (reference, ugosa, reference, ...) so drifts in machine speed hit both alike; prints seconds
per second of audio (median over repeats), the speed ratio, and the largest difference between the stems (but
for the one meant: ugosa gives each stem a share of the mixture's mean, demucs all of it).
Weights are random (the real ones cannot be downloaded here); speed and equality do not depend on them.
Also prints the achieved GFLOP/s of each (FLOPs counted analytically over the segments actually run)
against the machine's fp32 matmul rate measured in the same run (best of 5 products of 2048x2048).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from reference import import_demucs

from ugosa_cli.demo.synth import generate_song
from ugosa_cli.models.convtasnet import ModelConfig, build_model, config_from_state_dict
from ugosa_cli.separation import segment_offsets, separate_array
from ugosa_cli.sources import DEFAULT_SOURCES

TINY = dict(N=32, L=20, B=32, H=64, X=3, R=2)


def forward_flops(config: ModelConfig, samples: int) -> float:
    """Multiply-adds x 2 of one forward over ``samples``: the convolutions, masks and decoder (norms excluded)."""
    frames = (samples - config.L) // (config.L // 2) + 1
    sources = len(config.sources)
    per_frame = (
        2 * config.audio_channels * config.L * config.N  # encoder
        + 2 * config.N * config.B  # bottleneck
        + config.R * config.X * (4 * config.B * config.H + 2 * config.H * config.P)  # 1x1 convs + depthwise
        + 2 * config.B * sources * config.N  # mask conv
        + sources * config.N  # masking
        + 2 * sources * config.N * config.audio_channels * config.L  # decoder
    )
    return float(per_frame * frames)


def separation_flops(config: ModelConfig, length: int, overlap: float = 0.25) -> float:
    """FLOPs of separating ``length`` samples in the model's segments (no shifts)."""
    return sum(
        forward_flops(config, min(config.segment, length - o)) for o in segment_offsets(length, config.segment, overlap)
    )


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of ``size`` x ``size`` matrix products on this machine, now."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats + 1):
        began = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each implementation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--tiny", action="store_true", help="small model, 2 s clip, 1 repeat")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.tiny:
        args.seconds, args.repeats = 2.0, 1
    if args.threads:
        torch.set_num_threads(args.threads)

    RefConvTasNet, apply_model = import_demucs()
    torch.manual_seed(0)
    shape = TINY if args.tiny else dict(X=10)
    reference = RefConvTasNet(sources=list(DEFAULT_SOURCES), **shape).eval()
    ours = build_model(config_from_state_dict(reference.state_dict()), reference.state_dict())
    mix = generate_song(7, duration=max(args.seconds, 2.0)).mix[:, : int(args.seconds * 44100)]
    wav = torch.from_numpy(mix)

    offset_difference = float(wav.mean()) * (1 - 1 / len(DEFAULT_SOURCES))

    def run_reference():
        ref = wav.mean(0)
        return (apply_model(reference, (wav - ref.mean()) / ref.std(), split=True) * ref.std() + ref.mean()).numpy()

    def run_ours():
        return separate_array(ours, mix)

    times: dict[str, list[float]] = {"demucs 2.0.3": [], "ugosa": []}
    outputs = {}
    for _ in range(args.repeats):
        for name, fn in (("demucs 2.0.3", run_reference), ("ugosa", run_ours)):
            began = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - began)
    per_second = {name: statistics.median(t) / args.seconds for name, t in times.items()}
    flops = separation_flops(ours.config, wav.shape[-1])
    peak = matmul_gflops()
    result = {
        "clip_seconds": args.seconds,
        "model": "tiny" if args.tiny else "tasnet (full size)",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "seconds_per_audio_second": per_second,
        "speedup": per_second["demucs 2.0.3"] / per_second["ugosa"],
        # demucs adds the mixture's mean to every stem, ugosa a share of it to each: compared after that difference
        "max_abs_diff": float(abs(outputs["ugosa"] - outputs["demucs 2.0.3"] + offset_difference).max()),
        "gflop": flops / 1e9,
        "gflops": {name: flops / 1e9 / statistics.median(t) for name, t in times.items()},
        "matmul_peak_gflops": peak,
        "runs": times,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"| implementation | s per s of audio (median of {args.repeats}) | GFLOP/s | of matmul peak |")
    print("| --- | --- | --- | --- |")
    for name, value in per_second.items():
        rate = result["gflops"][name]
        print(f"| {name} | {value:.3f} | {rate:.1f} | {rate / peak:.0%} |")
    print(f"\nspeed-up {result['speedup']:.2f}x, max |difference| {result['max_abs_diff']:.2e}, "
          f"{result['threads']} threads, {args.seconds:g} s clip, {result['model']}, "
          f"{result['gflop']:.0f} GFLOP, fp32 matmul peak {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
