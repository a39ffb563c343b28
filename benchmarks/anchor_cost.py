"""What the anchor term (``--anchor``) costs per training step, per model family and cut.

    python benchmarks/anchor_cost.py                     # full-size tasnet (10 s window) and htdemucs (7.8 s)
    python benchmarks/anchor_cost.py --tasnet-window 2   # the same, tasnet on 2 s windows (5x quicker)
    python benchmarks/anchor_cost.py --tiny --steps 1    # small models (CI smoke test)

With labels for the vocals only, the three other sources have no labelled silence, so the anchor applies: each
step runs the trained part once more, without gradients, with its pretrained weights, for the anchor's target.
Each row times the same strategy on the same window with ``--anchor 0`` and with ``--anchor 0.3`` (the
default): the fastest of ``--steps`` steps after one warm-up, in CPU seconds of the process (all threads),
which a shared machine disturbs less than wall-clock time. ``share`` is the extra time over a step without the
anchor, the figure the CPU plan assumes (``adaptation.ANCHOR_STEP_SHARE``). Weights are random: time does not
depend on them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ugosa_cli.adaptation import ANCHOR_STEP_SHARE, AdaptationSettings, Adapter
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig
from ugosa_cli.strategy import freeze_for

TINY_TASNET = ModelConfig(N=32, B=32, H=64, X=3, R=4, samplerate=8000)
TINY_HT = HTDemucsConfig(channels=16, nfft=512, depth=3, t_heads=2, bottom_channels=32, t_layers=3, samplerate=8000,
                         segment=Fraction(1, 2))


def model_of(family: str, tiny: bool, tasnet_window: float) -> tuple[SeparationModel, float]:
    """A randomly initialised network of the family and the training window (seconds) it is timed on."""
    torch.manual_seed(0)
    if family == "tasnet":
        return ConvTasNet(TINY_TASNET if tiny else ModelConfig()).eval(), 1.0 if tiny else tasnet_window
    model = HTDemucs(TINY_HT if tiny else HTDemucsConfig()).eval()
    return model, model.segment_samples / model.samplerate


def step_cpu_seconds(family: str, strategy: str, anchor: float, steps: int, tiny: bool,
                     tasnet_window: float = 10.0) -> tuple[float, bool]:
    """Fastest step (CPU s) of ``strategy`` with ``anchor``, and whether activations were recomputed."""
    model, seconds = model_of(family, tiny, tasnet_window)
    frames = int(round(seconds * model.samplerate))
    mix = (0.1 * np.random.default_rng(0).standard_normal((model.audio_channels, frames))).astype(np.float32)
    acts = np.ones((len(model.sources), frames), np.float32)
    acts[model.sources.index("vocals"), : frames // 2] = 0  # only the vocals labelled
    settings = AdaptationSettings(strategy=strategy, window=seconds, hop=seconds, optimizer="adam", lr=1e-4,
                                  anchor=anchor)
    adapter = Adapter(model, mix, acts, settings)
    assert adapter.anchors == (anchor > 0)
    freeze_for(model, adapter.strategy)
    adapter._prefix(0)
    timings = []
    for _ in range(steps + 1):
        began = time.process_time()
        loss, _ = adapter._forward_loss([0])
        loss.backward()
        timings.append(time.process_time() - began)
        model.zero_grad(set_to_none=True)
    return min(timings[1:]), bool(adapter.split and adapter.split.recompute)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="tasnet,htdemucs")
    parser.add_argument("--strategies", default="P-L1:D,P-L2:D,P-L3:D,P-L4:D,P-L5:D")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasnet-window", type=float, default=10.0, help="seconds (the paper: 10)")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for family in args.families.split(","):
        for strategy in args.strategies.split(","):
            plain, recompute = step_cpu_seconds(family, strategy, 0.0, args.steps, args.tiny, args.tasnet_window)
            anchored, _ = step_cpu_seconds(family, strategy, 0.3, args.steps, args.tiny, args.tasnet_window)
            rows.append({"family": family, "strategy": strategy, "recompute": recompute, "step_cpu_s": plain,
                         "anchored_step_cpu_s": anchored, "share": anchored / plain - 1})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"threads": args.threads, "tiny": args.tiny, "rows": rows}))
        return
    print(f"{'small' if args.tiny else 'full-size'} models (tasnet on {args.tasnet_window:g} s windows), "
          f"{args.threads} threads, {platform.machine()}; "
          f"the plan assumes a share of {ANCHOR_STEP_SHARE:.2f}\n")
    print("| family | strategy | activations | step, CPU s | with the anchor, CPU s | share |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['family']} | {r['strategy']} | {'recomputed' if r['recompute'] else 'kept'} | "
              f"{r['step_cpu_s']:.2f} | {r['anchored_step_cpu_s']:.2f} | {r['share']:+.0%} |")


if __name__ == "__main__":
    main()
