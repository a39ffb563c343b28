"""Adaptation speed per strategy: ugosa with and without prefix caching, against a plain reference-style loop.

    python benchmarks/adaptation_speed.py              # full-size tasnet, 30 s clip, paper windows (10 s, hop 1 s)
    python benchmarks/adaptation_speed.py --tiny       # small model, short clip (CI smoke test)

The plain loop is what the paper's code does: batch 1, the whole model forward on every window, loss,
backward, optimiser step, with every depthwise conv through ``nn.Conv1d`` (``use_fast_backward(False)``).
ugosa computes the frozen prefix once per window (cached) and trains only the
rest; without the cache it recomputes the prefix under no_grad each step. Each figure is the fastest of
``--steps`` timed steps after one warm-up; seconds per epoch = windows per epoch x seconds per step (a
cached run pays the prefix once, in its first epoch). Timing whole epochs of the full model is hours on a
CPU, hence the extrapolation from measured steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from ugosa_cli.adaptation import AdaptationSettings, Adapter, _make_optimizer, proposed_loss, window_starts
from ugosa_cli.demo.synth import generate_song
from ugosa_cli.labels import activation_matrix, labels_from_regions
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.strategy import Strategy, freeze_for

TINY = ModelConfig(N=32, B=32, H=64, X=3, R=4)


def plain_step_seconds(model: ConvTasNet, strategy: str, mix: torch.Tensor, acts: torch.Tensor, steps: int) -> float:
    """Fastest of ``steps`` reference-style steps: whole forward, proposed loss, backward, Ranger step.

    Switches ``model`` to ``nn.Conv1d`` depthwise convs first, as the paper's code trains.
    """
    model.use_fast_backward(False)
    trainable = freeze_for(model, Strategy.parse(strategy))
    optimizer = _make_optimizer("ranger", trainable, 1e-5)
    timings = []
    for _ in range(steps + 1):
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = proposed_loss(model(mix[None]), mix[None], acts[None, :, None], 1.0)
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - began)
    return min(timings[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--strategies", default="P-L1:D,P-L2:D,P-L3:D,P-L4:D,P-L5:D")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.seconds, args.window, args.hop, args.steps = 4.0, 1.0, 1.0, 1
    torch.manual_seed(0)
    base = ConvTasNet(TINY if args.tiny else ModelConfig()).eval()
    song = generate_song(3, duration=max(args.seconds, 2.0))
    frames = int(args.seconds * 44100)
    mix = song.mix[:, :frames]
    acts = activation_matrix(labels_from_regions(song.regions, duration=song.duration), 44100, frames)
    window = int(args.window * 44100)
    windows = len(window_starts(frames, window, int(args.hop * 44100)))
    x = torch.from_numpy(mix)
    ref = x.mean(0)
    normalised = (x - ref.mean()) / ref.std()
    rows = []
    for strategy in args.strategies.split(","):
        model = ConvTasNet(base.config)
        model.load_state_dict(base.state_dict())
        settings = AdaptationSettings(strategy=strategy, window=args.window, hop=args.hop, max_windows=1, holdout=0.0)
        step, prefix = Adapter(model, mix, acts, settings).measure(args.window, args.steps + 1)
        plain = plain_step_seconds(
            model, strategy, normalised[:, :window], torch.from_numpy(acts[:, :window]), args.steps
        )
        rows.append(
            {
                "strategy": strategy,
                "plain_epoch_s": plain * windows,
                "uncached_epoch_s": (step + prefix) * windows,
                "cached_epoch_s": step * windows,
                "first_cached_epoch_s": (step + prefix) * windows,
                "speedup_cached": plain / step,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # each row as soon as it is measured
    if args.json:
        print(json.dumps({"windows_per_epoch": windows, "threads": torch.get_num_threads(), "rows": rows}))
        return
    print(f"{windows} windows per epoch ({args.window:g} s, hop {args.hop:g} s) on a {args.seconds:g} s clip, "
          f"{torch.get_num_threads()} threads, {'tiny model' if args.tiny else 'full-size tasnet'}\n")
    print("| strategy | plain loop s/epoch | ugosa, no cache s/epoch | ugosa, cached s/epoch | cached vs plain |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['strategy']} | {r['plain_epoch_s']:.1f} | {r['uncached_epoch_s']:.1f} | "
              f"{r['cached_epoch_s']:.1f} | {r['speedup_cached']:.1f}x |")


if __name__ == "__main__":
    main()
