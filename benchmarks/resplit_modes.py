"""The labels applied to the pretrained stems, by the two modes of the re-split, per song.

    python benchmarks/resplit_modes.py --model demo_htdemucs --sets synth:2400000-2400003,near:2400100-2400101
    python benchmarks/resplit_modes.py --sets synth:3000000 --duration 4                      # smoke

Each song (``NAME:FIRST-LAST`` seeds, sets as in ``frontier.py``) is separated by the pretrained model (B0), and
its stems re-split by the labels (:class:`ugosa_cli.postfilters.Resplit`) in each mode: ``mix`` (the mixture
re-split among the stems labelled playing: what ``--strategy B0`` writes) and ``stems`` (only what the resting
stems hold handed on to the playing ones). Scores: whole-song SDR (MDX definition) per source against the true
stems, mean over the sources; the gain of each mode over B0 per song and as means over each set.
"""

from __future__ import annotations

import argparse
import datetime
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
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationRequest
from ugosa_cli.postfilters import RESPLIT_MODES, resplit_array
from ugosa_cli.strategy import B0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="registry name or checkpoint file (default: demo)")
    parser.add_argument("--sets", required=True, help="comma-separated NAME:FIRST-LAST (see frontier.py)")
    parser.add_argument("--duration", type=float, default=16.0, help="seconds per song")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.time()
    loaded = hub.resolve_model(args.model, offline=True)
    pipeline = GuidedSeparator(loaded, adaptation=AdaptationRequest(strategy=B0), post_filter=None)
    print(f"model {loaded.name} (sha256 {loaded.sha256[:8]}), sets {args.sets}, {args.duration:g} s", flush=True)
    per_set: dict[str, list[list[float]]] = {}
    for set_name, song in songs(args.sets, args.duration):
        references = np.stack([song.stems[name] for name in loaded.model.sources])
        labels = song_labels(song)
        pipeline.reset()
        stems = pipeline.separate_array(song.mix, labels).model
        base = float(np.mean(sdr(references, stems)))
        gains = [float(np.mean(sdr(references, resplit_array(stems, song.mix, labels, song.samplerate, mode=mode))))
                 - base for mode in RESPLIT_MODES]
        per_set.setdefault(set_name, []).append(gains)
        print(f"{set_name} {song.seed}: B0 {base:.2f}, "
              + ", ".join(f"{mode} {gain:+.2f}" for mode, gain in zip(RESPLIT_MODES, gains)), flush=True)
    print("\nMean gain over B0 (dB): set, songs, " + ", ".join(RESPLIT_MODES) + ", worst song of each")
    for set_name, rows in per_set.items():
        table = np.array(rows)
        print(f"{set_name:12} {len(rows):2d}  " + "  ".join(f"{v:+.2f}" for v in table.mean(axis=0))
              + "   " + "  ".join(f"{v:+.2f}" for v in table.min(axis=0)))
    print(f"{(time.time() - began) / 60:.1f} min on {platform.machine()}, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
