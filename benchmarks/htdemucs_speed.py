"""HT-Demucs speed: ugosa's forward against demucs 4.1.0's, same random weights, in one run.

    python benchmarks/htdemucs_speed.py                  # full-size htdemucs, one 7.8 s segment, 2 threads
    python benchmarks/htdemucs_speed.py --song 20        # also demucs' apply_model on a 20 s clip
    python benchmarks/htdemucs_speed.py --tiny           # a small model (CI smoke test)

Model level: ``HTDemucs.forward`` of demucs 4.1.0 against ugosa's on the same segment, runs alternating
(demucs, ugosa, demucs, ...) so drifts in machine speed hit both alike; prints wall seconds and process CPU
seconds per second of audio (min and median over repeats) and the largest difference between the stems.
With ``--song S``: demucs' ``apply_model(model, mix, shifts=0, split=True, overlap=0.25)`` on an S-second
clip against ugosa's own separation loop (``ugosa_cli.separation.separate_tensor``, what ``ugosa separate``
runs). The FLOPs of one forward (torch's counter) over the measured time, against the machine's measured
float32 matrix-product rate, give the share of that rate each implementation reaches.
Weights are random, with every LayerScale and norm randomised so the transformer and the DConv branches
shape the stems (speed does not depend on the weights).

On a machine shared with other work, OpenMP threads that spin while waiting lose their time slices and
the wall times scatter by 2-3x; ``OMP_WAIT_POLICY=PASSIVE`` keeps the figures (CPU seconds above all)
steady.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import torch
from reference import htdemucs_kwargs, import_demucs_v4, randomise_scales_and_norms

from ugosa_cli.models.htdemucs import HTDemucsConfig, build_from_config, build_htdemucs
from ugosa_cli.separation import separate_tensor

TINY = dict(channels=16, nfft=512, depth=3, t_heads=2, bottom_channels=32, t_layers=3, samplerate=8000,
            segment=Fraction(1, 2))


def matmul_rate(threads: int, repeats: int = 5) -> float:
    """The machine's float32 matrix-product rate (FLOP/s, best of ``repeats``) at transformer-like sizes."""
    a, b = torch.randn(4032, 512), torch.randn(512, 2048)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * 4032 * 512 * 2048 / best


def _seconds(run: Callable[[], Any]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def forward_flops(model: torch.nn.Module, mix: torch.Tensor) -> int:
    """Floating-point operations of one forward, as torch's FLOP counter sees them (matmuls, convolutions,
    attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(mix)
    return int(counter.get_total_flops())


def timed(runs: dict[str, Callable[[], torch.Tensor]], repeats: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Alternate the runs ``repeats`` times; wall and CPU seconds of each, and the last outputs."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            began_wall, began_cpu = time.perf_counter(), time.process_time()
            outputs[name] = run()
            wall[name].append(time.perf_counter() - began_wall)
            cpu[name].append(time.process_time() - began_cpu)
    return {"wall": wall, "cpu": cpu}, outputs


def summary(times: dict[str, Any], seconds: float) -> dict[str, Any]:
    per_second = {
        kind: {name: {"min": min(values) / seconds, "median": statistics.median(values) / seconds}
               for name, values in by_name.items()}
        for kind, by_name in times.items()
    }
    wall = per_second["wall"]
    return {
        "seconds_per_audio_second": {name: value["median"] for name, value in wall.items()},
        "per_audio_second": per_second,
        "speedup_median": wall["demucs 4.1.0"]["median"] / wall["ugosa"]["median"],
        "speedup_min": wall["demucs 4.1.0"]["min"] / wall["ugosa"]["min"],
        "runs": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each implementation")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--song", type=float, default=0.0, help="also compare apply_model on a clip of this length (s)")
    parser.add_argument("--tiny", action="store_true", help="small model, 1 repeat, a 1.2 s song")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.tiny:
        args.repeats, args.song = 1, 1.2
    torch.set_num_threads(args.threads)

    reference_class, apply_model = import_demucs_v4()
    kwargs = htdemucs_kwargs()
    if args.tiny:
        kwargs.update(TINY)
    torch.manual_seed(0)
    reference = reference_class(**kwargs)
    randomise_scales_and_norms(reference)
    reference.eval()
    if args.tiny:
        ours = build_from_config(HTDemucsConfig(**TINY), reference.state_dict())
    else:
        ours = build_htdemucs(kwargs, reference.state_dict())
    rate, segment = ours.samplerate, ours.segment_samples
    mix = torch.randn(1, 2, segment, generator=torch.Generator().manual_seed(7))

    with torch.no_grad():
        times, outputs = timed({"demucs 4.1.0": lambda: reference(mix), "ugosa": lambda: ours(mix)}, args.repeats)
    result: dict[str, Any] = {
        "model": "tiny" if args.tiny else "htdemucs (full size, random weights)",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "segment_seconds": segment / rate,
        "repeats": args.repeats,
        **summary(times, segment / rate),
        "max_abs_diff": float((outputs["ugosa"] - outputs["demucs 4.1.0"]).abs().max()),
    }
    flops = forward_flops(ours, mix)
    rate_gemm = matmul_rate(args.threads)
    result["forward_gflop"] = flops / 1e9
    result["matmul_gflops"] = rate_gemm / 1e9
    result["share_of_matmul_rate"] = {
        name: flops / (min(times["wall"][name])) / rate_gemm for name in ("demucs 4.1.0", "ugosa")
    }
    if args.song:
        clip = torch.randn(1, 2, int(args.song * rate), generator=torch.Generator().manual_seed(8))
        with torch.no_grad():
            song_times, song_out = timed(
                {
                    "demucs 4.1.0": lambda: apply_model(reference, clip, shifts=0, split=True, overlap=0.25),
                    "ugosa": lambda: separate_tensor(ours, clip[0])[None],
                },
                args.repeats,
            )
        result["song"] = {
            "seconds": args.song,
            **summary(song_times, args.song),
            "max_abs_diff": float((song_out["ugosa"] - song_out["demucs 4.1.0"]).abs().max()),
        }
    if args.json:
        print(json.dumps(result))
        return
    print(f"| forward on one {segment / rate:g} s segment | wall s per s of audio (min / median of {args.repeats}) "
          "| CPU s per s of audio (min / median) |")
    print("| --- | --- | --- |")
    for name in ("demucs 4.1.0", "ugosa"):
        wall, cpu = result["per_audio_second"]["wall"][name], result["per_audio_second"]["cpu"][name]
        print(f"| {name} | {wall['min']:.3f} / {wall['median']:.3f} | {cpu['min']:.3f} / {cpu['median']:.3f} |")
    print(f"\nspeed-up {result['speedup_min']:.2f}x (min) {result['speedup_median']:.2f}x (median), "
          f"max |difference| {result['max_abs_diff']:.2e}, {result['threads']} threads, {result['model']}")
    shares = result["share_of_matmul_rate"]
    print(f"one forward: {result['forward_gflop']:.1f} GFLOP; matmul rate {result['matmul_gflops']:.1f} GFLOP/s; "
          f"share of it reached (best run): demucs {shares['demucs 4.1.0']:.0%}, ugosa {shares['ugosa']:.0%}")
    if args.song:
        song = result["song"]
        wall, cpu = song["per_audio_second"]["wall"], song["per_audio_second"]["cpu"]
        print(f"\n{args.song:g} s clip, demucs apply_model(split=True, overlap=0.25, shifts=0) against ugosa's "
              "separation loop:")
        for name in ("demucs 4.1.0", "ugosa"):
            print(f"| {name} | {wall[name]['min']:.3f} / {wall[name]['median']:.3f} "
                  f"| {cpu[name]['min']:.3f} / {cpu[name]['median']:.3f} |")
        print(f"speed-up {song['speedup_min']:.2f}x (min) {song['speedup_median']:.2f}x (median), "
              f"max |difference| {song['max_abs_diff']:.2e}")

if __name__ == "__main__":
    main()
