"""The cost frontier of adaptation: gain over B0 against optimisation steps, per strategy and step size, per song.

    python benchmarks/frontier.py --sets synth:2400000-2400003 --strategies P-L1:D,P-L2:D --step-sizes 3e-3,1e-2 \\
        --steps 8,16,32,64 --json frontier.json
    python benchmarks/frontier.py --sets synth:3000000 --duration 4 --strategies P-L5:D --steps 1,2   # smoke
    python benchmarks/frontier.py --replay demo.jsonl,ht.jsonl --falls 0,0.005,0.007 --cleans -10,-7.5 --max-steps 40,80

``--replay`` reads such files back instead and replays the decision with early stopping
(:mod:`ugosa_cli.decision`) on their snapshots: checks at every multiple of
:data:`~ugosa_cli.decision.CHECK_EVERY` steps among the scored counts, training stopped at the first where the
held-out error has fallen by less than ``--falls`` dB a step since training began (or at ``--max-steps``), no
training below ``--cleans`` dB, the pretrained stems when the error rose by more than the decision's
:data:`~ugosa_cli.decision.MAX_RISE_DB`. Printed per file: the mean gain of what would be written over the labels
alone, the worst song's, and the mean steps.

Each song of each set (``NAME:FIRST-LAST`` seeds; ``NAME`` one of :data:`SETS`) is separated by the pretrained
model (B0). For each strategy and step size the model is adapted with the song's exact labels through
:class:`ugosa_cli.adaptation.Adapter`, as ``ugosa separate --labels`` runs it (the step-size rule, held-out
rests, the guard band and anchor of the defaults, non-overlapping windows), and at each count of ``--steps`` the
whole song is separated with the weights of that moment and scored against the true stems (whole-song SDR, MDX
definition, mean over the sources, gain over B0's):

- ``adapted``: the adapted model's stems;
- ``adapted+resplit``: those stems with the labels applied as ``separate --labels`` applies them after adapting;
- ``B0+resplit``: the pretrained stems with the labels applied (what is written when adapting is not done);
- ``written``: what ``separate --labels`` writes: the held-out check's decision
  (:mod:`ugosa_cli.decision`) between the two before.

With each snapshot go the held-out check (the leakage of the pretrained and the adapted model on the rests kept
out of training) and the CPU seconds the training took so far in this process. Full-size costs per step come from
``benchmarks/adaptation_cost.py``; this script counts steps, which carry across sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from label_robustness import make_song

from ugosa_cli import hub
from ugosa_cli.adaptation import AdaptationResult, AdaptationSettings, Adapter, StepReport
from ugosa_cli.decision import (
    CHECK_EVERY,
    CLEAN_DB,
    MAX_RISE_DB,
    MIN_FALL_DB_PER_STEP,
    Decision,
    after_training,
    before_training,
)
from ugosa_cli.demo.runner import song_labels
from ugosa_cli.demo.synth import Song
from ugosa_cli.labels import Labels, activation_matrix
from ugosa_cli.metrics import mdx_sdr
from ugosa_cli.pipeline import GuidedSeparator, SongStems
from ugosa_cli.planning import AdaptationRequest, longest_window
from ugosa_cli.strategy import Strategy

# name -> (generator, rest layout, timbres cycled over the songs): the built-in synthesizer far from the demo
# model's training sounds (timbre +-2) and near them (+-0.6), the independent generator, and the hybrid.
SETS = {
    "synth": ("synth", "quarters", (2.0, -2.0)),
    "synthsec": ("synth", "sections", (2.0, -2.0)),
    "near": ("synth", "quarters", (0.6, -0.6)),
    "other": ("other", "quarters", (0.0,)),
    "othersec": ("other", "sections", (0.0,)),
    "hybrid": ("hybrid", "quarters", (2.0, -2.0)),
}


# Post-filters scored after adapting beside the default: name -> (resplit mode, guide, guard band in seconds).
VARIANTS = {"stems/mean@0.5": ("stems", "mean", 0.5), "mix/adapted": ("mix", "adapted", 0.0)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="registry name or checkpoint file (default: demo)")
    parser.add_argument("--sets", default="", help="comma-separated NAME:FIRST-LAST (seeds), NAME in " + ", ".join(SETS))
    parser.add_argument("--duration", type=float, default=16.0, help="seconds per song")
    parser.add_argument("--strategies", default="P-L1:D", help="comma-separated strategies")
    parser.add_argument("--step-sizes", default="3e-3", help="comma-separated relative step sizes (--step)")
    parser.add_argument("--steps", default="8,16,32", help="comma-separated step counts at which to score")
    parser.add_argument("--window", type=float, default=None, help="window seconds (default: the settings')")
    parser.add_argument("--holdout", type=float, default=None, help="held-out share (default: the settings')")
    parser.add_argument("--gamma", type=float, default=None, help="silence weight (default: the settings')")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per song to this file")
    parser.add_argument("--replay", default=None, help="comma-separated JSON files of earlier runs: replay the "
                        "decision with early stopping on their snapshots instead of running")
    parser.add_argument("--falls", default=f"{MIN_FALL_DB_PER_STEP:g}", help="with --replay: comma-separated least mean falls (dB a "
                        "step) of the held-out error to go on training; 'none': never stop early")
    parser.add_argument("--cleans", default=f"{CLEAN_DB:g}", help="with --replay: comma-separated errors (dB) below which "
                        "nothing is trained")
    parser.add_argument("--max-steps", default="80", help="with --replay: comma-separated planned step counts")
    return parser.parse_args(argv)


def replay_song(record: dict, fall: float | None, clean: float, planned: int) -> tuple[int, float]:
    """Steps made and the gain of what would be written over the labels alone (dB) for one song of a frontier file
    (its first run), with early stopping at ``fall`` dB a step (None: never), no training below ``clean`` dB."""
    snapshots = next(iter(record["runs"].values()))["snapshots"]
    counts = sorted(int(k) for k in snapshots if int(k) <= planned)
    stop = counts[-1]
    first = snapshots[str(counts[0])]["check"]
    before = None if first is None else first["error_before_db"]
    if before is not None:  # without a held-out rest nothing is checked: every step, the adapted stems
        if before < clean:
            return 0, 0.0
        for k in [k for k in counts if k % CHECK_EVERY == 0 and k < planned] if fall is not None else []:
            if before - snapshots[str(k)]["check"]["error_after_db"] < fall * k:
                stop = k
                break
        if snapshots[str(stop)]["check"]["error_after_db"] > before + MAX_RISE_DB:
            return stop, 0.0
    snapshot = snapshots[str(stop)]
    return stop, float(np.mean(snapshot["adapted_resplit"]) - np.mean(record["b0_resplit"]))


def replay(args: argparse.Namespace) -> None:
    files = [Path(name) for name in args.replay.split(",")]
    records = {path: [json.loads(line) for line in path.open()] for path in files}
    print("planned steps, least fall (dB a step), no training below (dB) | per file: mean and worst gain over the "
          "labels alone (dB), mean steps")
    for planned in (int(v) for v in args.max_steps.split(",")):
        for clean in (float(v) for v in args.cleans.split(",")):
            for fall in (None if v == "none" else float(v) for v in args.falls.split(",")):
                cells = []
                for path, rows in records.items():
                    results = [replay_song(row, fall, clean, planned) for row in rows]
                    gains = [gain for _, gain in results]
                    cells.append(f"{path.stem} {np.mean(gains):+.2f} worst {min(gains):+.2f} steps "
                                 f"{np.mean([steps for steps, _ in results]):.0f}")
                print(f"{planned:4d} {'none' if fall is None else f'{fall:g}':>6} {clean:6g} | " + " | ".join(cells))


def songs(spec: str, duration: float) -> list[tuple[str, Song]]:
    """The songs of ``NAME:FIRST-LAST[,...]``."""
    out = []
    for part in spec.split(","):
        name, _, seeds = part.partition(":")
        if name not in SETS:
            raise SystemExit(f"unknown set {name!r}; use one of {', '.join(SETS)}")
        first, _, last = seeds.partition("-")
        generator, rests, timbres = SETS[name]
        for seed in range(int(first), int(last or first) + 1):
            out.append((name, make_song(generator, seed, duration, timbres[seed % len(timbres)], rests)))
    return out


def sdr(references: np.ndarray, estimates: np.ndarray) -> list[float]:
    return [mdx_sdr(ref, est) for ref, est in zip(references, estimates)]


def adapt_with_snapshots(
    pipeline: GuidedSeparator, song: Song, labels: Labels, acts: np.ndarray, references: np.ndarray, b0: SongStems,
    settings: AdaptationSettings, counts: list[int],
) -> tuple[dict[int, dict], AdaptationResult, Decision | None]:
    """Adapt the pipeline's model to ``song`` and score the whole song at each of ``counts`` steps; the snapshots,
    the result, and the check's decision before training (None: train)."""
    model = pipeline.model
    adapter = Adapter(model, song.mix, acts, settings)
    evidence = adapter.check()
    snapshots: dict[int, dict] = {}
    cpu = [0.0, time.process_time()]

    def snapshot(report: StepReport) -> None:
        if report.done not in counts:
            return
        cpu[0] += time.process_time() - cpu[1]
        training = model.training
        pipeline.adapted = True
        found, residual = adapter.leakage()
        written = pipeline.separate_array(song.mix, labels, pretrained=b0.model)
        model.train(training)
        variants = {}
        for name, (mode, guide, guard) in VARIANTS.items():
            pipeline.resplit_mode, pipeline.resplit_guide, pipeline.filter_guard = mode, guide, guard
            variants[name] = sdr(references, pipeline.filter_array(song.mix, written.model, labels,
                                                                   pretrained=b0.model).written)
        pipeline.resplit_mode, pipeline.resplit_guide, pipeline.filter_guard = None, "mean", None
        checked = None if evidence is None else evidence.with_after({n: db for n, (_, db) in found.items()}, residual)
        decision = after_training(checked) if checked is not None else None
        snapshots[report.done] = {
            "cpu_s": round(cpu[0], 2),
            "adapted": sdr(references, written.model),
            "adapted_resplit": sdr(references, written.written),
            "variants": variants,
            "check": None if checked is None else checked.to_dict(),
            "decision": None if decision is None else decision.write,
        }
        cpu[1] = time.process_time()

    result = adapter.run(snapshot, stop_early=False)  # every count is scored; stopping is replayed (--replay)
    return snapshots, result, None if evidence is None else before_training(evidence)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.replay:
        replay(args)
        return
    if not args.sets:
        raise SystemExit("give --sets (or --replay with the JSON files of earlier runs)")
    torch.set_num_threads(args.threads)
    began = time.time()
    loaded = hub.resolve_model(args.model, offline=True)
    counts = sorted({int(k) for k in args.steps.split(",")})
    overrides = {key: value for key, value in (("window", args.window), ("holdout", args.holdout),
                                               ("gamma", args.gamma)) if value is not None}
    pipeline = GuidedSeparator(loaded, adaptation=AdaptationRequest(), post_filter="resplit")
    print(f"model {loaded.name} (sha256 {loaded.sha256[:8]}), sets {args.sets}, {args.duration:g} s, steps {counts}, "
          f"overrides {overrides}", flush=True)
    for set_name, song in songs(args.sets, args.duration):
        references = np.stack([song.stems[name] for name in loaded.model.sources])
        labels = song_labels(song)
        acts = activation_matrix(labels, song.samplerate, song.frames)
        pipeline.reset()
        b0 = pipeline.separate_array(song.mix, labels)  # pretrained, and with the labels applied
        base = sdr(references, b0.model)
        record: dict = {"set": set_name, "seed": song.seed, "timbre": song.timbre, "b0": base,
                        "b0_resplit": sdr(references, b0.written), "runs": {}}
        for strategy in args.strategies.split(","):
            for size in (float(v) for v in args.step_sizes.split(",")):
                pipeline.reset()
                settings = dataclasses.replace(AdaptationSettings(), strategy=Strategy.parse(strategy), step=size,
                                               steps=max(counts), **overrides)
                limit = longest_window(loaded.model)
                if limit is not None and settings.window > limit:
                    settings = dataclasses.replace(settings, window=limit)
                settings = dataclasses.replace(settings, hop=settings.window)
                snapshots, result, prior = adapt_with_snapshots(pipeline, song, labels, acts, references, b0, settings,
                                                                counts)
                key = f"{strategy}@{size:g}"
                record["runs"][key] = {"snapshots": snapshots, "windows": result.windows,
                                       "skip_before": None if prior is None else prior.write}
                line = " ".join(
                    f"{k}:{np.mean(np.subtract(s['adapted'], base)):+.2f}/{np.mean(np.subtract(s['adapted_resplit'], base)):+.2f}"
                    + "".join(f"/{np.mean(np.subtract(v, base)):+.2f}" for v in s["variants"].values())
                    + f"{'' if s['decision'] != 'pretrained' else '*'}"
                    for k, s in snapshots.items())
                print(f"{set_name} {song.seed} {key}: B0 {np.mean(base):.2f} B0+rs "
                      f"{np.mean(np.subtract(record['b0_resplit'], base)):+.2f} | {line}"
                      f"{' (check before: skip)' if prior else ''}", flush=True)
        if args.json is not None:
            with args.json.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
    print(f"{(time.time() - began) / 60:.1f} min on {platform.machine()}, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
