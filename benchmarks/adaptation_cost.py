"""What adapting costs at full size, and what the CPU plan affords: per family, cut and window length.

    python benchmarks/adaptation_cost.py --family tasnet --windows 2,4,10 --cuts 1,2,4,5
    python benchmarks/adaptation_cost.py --family htdemucs --windows 7.8 --cuts 1,2,3,4,5
    python benchmarks/adaptation_cost.py --plan-only --minutes 3,0.5      # the CPU plan of each cut, no timing
    python benchmarks/adaptation_cost.py --tiny --windows 1 --cuts 2      # smoke

The released configurations with random weights (time does not depend on the weights). For each window length
and cut: the CPU seconds (``time.process_time``, all threads) of one inference forward of a window, of its
frozen prefix, and of one training step on it (the fastest of ``--steps``, through
:meth:`ugosa_cli.adaptation.Adapter.measure`), the measured ratios next to the plan's own
(:meth:`~ugosa_cli.models.family.ModelFamily.relative_cost`); and, for songs of ``--minutes``, the steps and
windows of the CPU plan (:func:`ugosa_cli.planning.fit_to_budget`) for each cut, from the network's shape
alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ugosa_cli.adaptation import AdaptationSettings, Adapter
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.models import family_of
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig
from ugosa_cli.planning import AdaptationRequest, plan_adaptation
from ugosa_cli.strategy import Strategy

SOURCES = ("drums", "bass", "other", "vocals")


def network(family: str, tiny: bool) -> SeparationModel:
    """The released configuration of ``family`` (``tasnet`` or ``htdemucs``) with random weights, or a tiny one."""
    torch.manual_seed(0)
    if family == "tasnet":
        config = ModelConfig(N=32, B=32, H=64, X=3, R=4) if tiny else ModelConfig()
        return ConvTasNet(config).eval()
    size = dict(channels=8, nfft=2048, depth=4, bottom_channels=0, t_layers=2, t_heads=4, t_hidden_scale=2.0,
                segment=Fraction(2)) if tiny else dict(
        channels=48, nfft=4096, depth=4, bottom_channels=512, t_layers=5, t_heads=8, t_hidden_scale=4.0,
        segment=Fraction(39, 5))
    return HTDemucs(HTDemucsConfig(sources=SOURCES, audio_channels=2, samplerate=44100, t_dropout=0.0, **size)).eval()


def song(seconds: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A noise mixture and labels resting each source in one quarter, as the benchmark songs do."""
    frames = int(seconds * rate)
    mix = (np.random.default_rng(0).standard_normal((2, frames)) * 0.1).astype(np.float32)
    acts = np.ones((4, frames), np.float32)
    for index in range(4):
        acts[index, index * frames // 4 : (index + 1) * frames // 4] = 0
    return mix, acts


def cpu_seconds(function) -> float:  # type: ignore[no-untyped-def]
    began = time.process_time()
    function()
    return time.process_time() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="tasnet", choices=("tasnet", "htdemucs"))
    parser.add_argument("--windows", default="4", help="comma-separated window lengths (s) to time")
    parser.add_argument("--cuts", default="1,2,3,4,5")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case (the fastest is kept)")
    parser.add_argument("--minutes", default="3,0.5", help="comma-separated song lengths for the plan")
    parser.add_argument("--plan-only", action="store_true", help="only the plans (no timing)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="a tiny configuration (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = network(args.family, args.tiny)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    family = family_of(model)
    rate = model.samplerate
    cuts = [int(c) for c in args.cuts.split(",")]
    rows: list[dict] = []
    if not args.plan_only:
        for window in (float(w) for w in args.windows.split(",")):
            mix, acts = song(2 * window, rate)
            x = torch.from_numpy(mix[None, :, : int(window * rate)])
            with torch.inference_mode():
                model(x)  # warm-up
                forward = min(cpu_seconds(lambda: model(x)) for _ in range(2))  # noqa: B023
            for cut in cuts:
                strategy = Strategy.parse(f"P-L{cut}:D")
                settings = AdaptationSettings(strategy=strategy, window=window, hop=window, steps=1, holdout=0.0,
                                              anchor=0.0)
                adapter = Adapter(model, mix, acts, settings)
                began = time.process_time()
                step, prefix = adapter.measure(seconds=window, steps=args.steps)
                cpu = time.process_time() - began
                share = cpu / max(1e-9, prefix + args.steps * step)  # CPU seconds per wall second of the run
                planned_prefix, planned_step = family.relative_cost(model, cut, recompute=adapter.split.recompute)
                row = {"family": args.family, "window_s": window, "cut": cut, "forward_cpu_s": round(forward, 2),
                       "prefix_cpu_s": round(prefix * share, 2), "step_cpu_s": round(step * share, 2),
                       "step_per_forward": round(step * share / forward, 3), "planned_step": round(planned_step, 3),
                       "prefix_per_forward": round(prefix * share / forward, 3),
                       "planned_prefix": round(planned_prefix, 3), "recompute": adapter.split.recompute}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for minutes in (float(m) for m in args.minutes.split(",")):
        mix, acts = song(minutes * 60, rate)
        loaded = LoadedModel(model=model, name=args.family, sha256="0" * 64, provenance={})
        for cut in cuts:
            request = AdaptationRequest(strategy=Strategy.parse(f"P-L{cut}:D"))
            plan = plan_adaptation(loaded, mix, acts, request, torch.device("cpu"), estimate=False)
            row = {"family": args.family, "song_minutes": minutes, "cut": cut, "plan_steps": plan.steps,
                   "plan_windows": plan.windows, "window_s": plan.settings.window, "plan": plan.plan}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"{platform.machine()}, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
