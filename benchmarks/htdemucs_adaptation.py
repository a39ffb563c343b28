"""HT-Demucs adaptation cost per strategy: seconds per step and peak memory, ugosa against a plain loop.

    python benchmarks/htdemucs_adaptation.py                 # full-size htdemucs, one 7.8 s window, 2 threads
    python benchmarks/htdemucs_adaptation.py --tiny          # a small HT-Demucs (CI smoke test)

Each strategy runs in its own child process, so that its peak resident memory (``ru_maxrss``) is its own:

- **ugosa**: ``Adapter`` on one window of the model's segment length (7.8 s): the frozen prefix computed
  once (timed apart), then ``--steps`` optimisation steps of the trained suffix (the fastest is reported),
  with ugosa's own activation-checkpointing rule;
- **plain**: what the paper's code does: batch 1, the whole model forward on the window with gradients,
  the proposed loss, backward and an optimiser step (Adam), with the same parameters frozen.

Weights are random (speed and memory do not depend on them). The model is in eval mode in both (dropout
off), as ugosa adapts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TINY = dict(channels=16, nfft=512, depth=3, t_heads=2, bottom_channels=32, t_layers=3, samplerate=8000,
            segment=Fraction(1, 2))
STRATEGIES = "P-L1:D,P-L2:D,P-L3:D,P-L4:D,P-L5:D"


def _model(tiny: bool):  # type: ignore[no-untyped-def]
    import torch

    from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig

    torch.manual_seed(0)
    return HTDemucs(HTDemucsConfig(**TINY) if tiny else HTDemucsConfig()).eval()


def one(strategy: str, mode: str, steps: int, tiny: bool, keep: bool = False) -> dict[str, object]:
    """Time one strategy in this process (the child's work)."""
    import numpy as np
    import torch

    from ugosa_cli.adaptation import AdaptationSettings, Adapter, _make_optimizer, proposed_loss
    from ugosa_cli.strategy import Strategy, count_trainable, freeze_for

    model = _model(tiny)
    rate, window = model.samplerate, model.segment_samples
    rng = np.random.default_rng(0)
    mix = (0.1 * rng.standard_normal((2, window))).astype(np.float32)
    acts = np.ones((len(model.sources), window), np.float32)
    acts[3, : window // 2] = 0
    seconds = window / rate
    # anchor 0: the paper's loss, as the plain loop computes it (only the vocals are labelled here, so the
    # default anchor would add its forward pass; benchmarks/anchor_cost.py measures that)
    settings = AdaptationSettings(strategy=strategy, window=seconds, hop=seconds, optimizer="adam", lr=1e-4,
                                  anchor=0.0, **({"activation_bytes": 1 << 40} if keep else {}))
    timings: list[float] = []
    cpu_timings: list[float] = []
    result: dict[str, object] = {"strategy": strategy, "mode": mode,
                                 "trainable_parameters": count_trainable(model, Strategy.parse(strategy))}
    if mode == "ugosa":
        adapter = Adapter(model, mix, acts, settings)
        began = time.perf_counter()
        adapter._prefix(0)
        result["prefix_seconds"] = time.perf_counter() - began
        result["recompute"] = bool(adapter.split and adapter.split.recompute)
        trainable = freeze_for(model, adapter.strategy)
        optimizer = _make_optimizer("adam", trainable, 1e-4)
        for _ in range(steps + 1):
            began, began_cpu = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            loss, _ = adapter._forward_loss([0])
            loss.backward()
            optimizer.step()
            timings.append(time.perf_counter() - began)
            cpu_timings.append(time.process_time() - began_cpu)
    else:
        trainable = freeze_for(model, Strategy.parse(strategy))
        optimizer = _make_optimizer("adam", trainable, 1e-4)
        wav = torch.from_numpy(mix)
        x = ((wav - wav.mean()) / wav.mean(0).std())[None]
        h = torch.from_numpy(acts)[None, :, None]
        for _ in range(steps + 1):
            began, began_cpu = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            loss, _ = proposed_loss(model(x), x, h, 1.0)
            loss.backward()
            optimizer.step()
            timings.append(time.perf_counter() - began)
            cpu_timings.append(time.process_time() - began_cpu)
    result["step_seconds"] = min(timings[1:])
    result["step_cpu_seconds"] = min(cpu_timings[1:])  # all threads' CPU time: steadier than wall on a shared machine
    return result


def child(strategy: str, mode: str, steps: int, tiny: bool, threads: int, keep: bool) -> dict[str, object]:
    """Run :func:`one` in a fresh interpreter and read its peak memory."""
    command = [sys.executable, __file__, "--child", strategy, mode, "--steps", str(steps), "--threads", str(threads)]
    command += ["--tiny"] if tiny else []
    command += ["--keep-activations"] if keep else []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{strategy} {mode} failed (status {status})")
    return {**json.loads(output), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop")
    parser.add_argument("--keep-activations", action="store_true",
                        help="ugosa keeps the trained part's activations (never recomputes them), whatever their size")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(one(args.child[0], args.child[1], args.steps, args.tiny, args.keep_activations)))
        return
    rows = []
    for strategy in args.strategies.split(","):
        for mode in ("ugosa",) + (() if args.no_plain else ("plain",)):
            rows.append(child(strategy, mode, args.steps, args.tiny, args.threads, args.keep_activations))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    document = {"model": "tiny HT-Demucs" if args.tiny else "htdemucs (full size, random weights)",
                "threads": args.threads, "machine": platform.machine(), "torch": torch.__version__,
                "load_average": os.getloadavg(), "rows": rows}
    if args.json:
        print(json.dumps(document))
        return
    load = ", ".join(f"{value:.1f}" for value in document["load_average"])  # type: ignore[attr-defined]
    print(f"{document['model']}, one window of the model's segment, {args.threads} threads, fastest of {args.steps} "
          f"steps; load average at the end {load}\n")
    print("| strategy | #TP | ugosa s/step (CPU s) | prefix s (once per window) | peak MB | plain s/step (CPU s) "
          "| plain peak MB | speed-up (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_key = {(row["strategy"], row["mode"]): row for row in rows}
    for strategy in args.strategies.split(","):
        ours, plain = by_key[(strategy, "ugosa")], by_key.get((strategy, "plain"))
        plain_cells = (f"{plain['step_seconds']:.2f} ({plain['step_cpu_seconds']:.2f}) | {plain['peak_rss_mb']:.0f} | "
                       f"{float(plain['step_seconds']) / float(ours['step_seconds']):.1f}x "
                       f"({float(plain['step_cpu_seconds']) / float(ours['step_cpu_seconds']):.1f}x)"
                       ) if plain else "- | - | -"
        print(f"| {strategy} | {ours['trainable_parameters']:,} | {ours['step_seconds']:.2f} "
              f"({ours['step_cpu_seconds']:.2f}) | {ours['prefix_seconds']:.2f} | {ours['peak_rss_mb']:.0f} | {plain_cells} |")


if __name__ == "__main__":
    main()
