"""What ``ugosa separate --labels`` writes, per song, against B0 and against the labels applied to B0's stems.

    python benchmarks/separate_gain.py --model demo --sets synth:3400000-3400005,other:3400-3405 --json out.jsonl
    python benchmarks/separate_gain.py --sets synth:3000000 --duration 4 --steps 2      # smoke

Each song (``NAME:FIRST-LAST`` seeds, sets as in ``frontier.py``) is separated as the command does it: the
pretrained model's stems (B0), the labels applied to them (``B0+resplit``, what is written without adapting), and
``written``: the plan (ugosa's settings, the CPU plan), the held-out check, the decision, and the stems written
with the labels applied, all through :class:`ugosa_cli.pipeline.GuidedSeparator` as ``separate --labels`` runs it.
``--steps N`` fixes the number of steps instead of the plan's (to measure what a given count buys, e.g. the count
the CPU plan gives a full-size model). Scores: whole-song SDR (MDX definition) per source against the true stems,
mean over the sources; per song and as means over each set. With each song: the plan's steps and windows, the
decision, and the CPU seconds of adapting and of one separation in this process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frontier import sdr, songs

from ugosa_cli import hub
from ugosa_cli.demo.runner import song_labels
from ugosa_cli.labels import activation_matrix
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationRequest
from ugosa_cli.strategy import Strategy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="registry name or checkpoint file (default: demo)")
    parser.add_argument("--sets", required=True, help="comma-separated NAME:FIRST-LAST (see frontier.py)")
    parser.add_argument("--duration", type=float, default=16.0, help="seconds per song")
    parser.add_argument("--strategy", default=None, help="as --strategy (default: the model's or ugosa's)")
    parser.add_argument("--steps", type=int, default=None, help="as --steps (default: the CPU plan's)")
    parser.add_argument("--step", type=float, default=None, help="as --step")
    parser.add_argument("--window", type=float, default=None, help="as --window")
    parser.add_argument("--holdout", type=float, default=None, help="as --holdout")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per song to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.time()
    loaded = hub.resolve_model(args.model, offline=True)
    request = AdaptationRequest(strategy=None if args.strategy is None else Strategy.parse(args.strategy),
                                steps=args.steps, step=args.step, window=args.window, holdout=args.holdout)
    pipeline = GuidedSeparator(loaded, adaptation=request, post_filter="resplit", filter_few=True)
    print(f"model {loaded.name} (sha256 {loaded.sha256[:8]}), sets {args.sets}, {args.duration:g} s, "
          f"request {request.explicit()}", flush=True)
    per_set: dict[str, list[tuple[float, float]]] = {}
    for set_name, song in songs(args.sets, args.duration):
        references = np.stack([song.stems[name] for name in loaded.model.sources])
        labels = song_labels(song)
        acts = activation_matrix(labels, song.samplerate, song.frames)
        pipeline.reset()
        cpu = time.process_time()
        b0 = pipeline.separate_array(song.mix, labels)
        separation_cpu = time.process_time() - cpu
        base = sdr(references, b0.model)
        cpu = time.process_time()
        plan = pipeline.plan_array(song.mix, acts, estimate=False)
        result = pipeline.adapt(plan)
        adapt_cpu = time.process_time() - cpu
        written = pipeline.separate_array(song.mix, labels, pretrained=b0.model).written if pipeline.adapted \
            else b0.written
        gain = float(np.mean(np.subtract(sdr(references, written), base)))
        filtered = float(np.mean(np.subtract(sdr(references, b0.written), base)))
        per_set.setdefault(set_name, []).append((gain, filtered))
        decision = None if result.decision is None else result.decision.write
        record = {"set": set_name, "seed": song.seed, "timbre": song.timbre, "b0": base,
                  "b0_resplit": sdr(references, b0.written), "written": sdr(references, written),
                  "steps": result.steps, "windows": plan.windows, "strategy": plan.strategy.name,
                  "resplits": plan.resplits, "decision": decision,
                  "check": None if result.evidence is None else result.evidence.to_dict(),
                  "adapt_cpu_s": round(adapt_cpu, 2), "separation_cpu_s": round(separation_cpu, 2)}
        print(f"{set_name} {song.seed}: B0 {np.mean(base):.2f}, B0+resplit {filtered:+.2f}, written {gain:+.2f} "
              f"({gain - filtered:+.2f} against B0+resplit; {plan.strategy} {result.steps} steps, "
              f"{decision or ('filtered' if plan.resplits else '-')}; adapting {adapt_cpu:.0f} CPU s, a separation "
              f"{separation_cpu:.1f})", flush=True)
        if args.json is not None:
            with args.json.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
    print("\nMean gain over B0 (dB): set, songs, written, B0+resplit, worst song against B0+resplit")
    for name, rows in per_set.items():
        gains, filtered = np.array(rows).T
        print(f"{name:10} {len(rows):3d} {gains.mean():+6.2f} {filtered.mean():+6.2f} {np.min(gains - filtered):+6.2f}")
    print(f"{(time.time() - began) / 60:.1f} min on {platform.machine()}, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
