"""How much rest is too much? Adaptation on songs where one source is labelled silent for a growing share.

    python benchmarks/rest_share.py                                   # 4 songs x 20 s, shares 1/4, 3/8, 1/2
    python benchmarks/rest_share.py --songs 1 --duration 4 --shares 0.5 --epochs 1   # smoke

Songs: held-out seeds ``2_000_200 + k`` (never used to train the demo model nor scored by
``adaptation_gain.py``), each source resting in one quarter (the paper's protocol), timbre +2/-2
alternating. In song k the source ``k mod 4`` has its rest stretched from one quarter to ``share`` of the
song (one stretch, from where its quarter starts, wrapping round), the stem silenced there and the mix
rebuilt. Each song is separated with B0, adapted with the true labels and the model's recommended
settings, and separated again. Printed per song and share, for the stretched source over the samples where
it plays: SDR before and after, and the level of its estimate against the true stem (dB; adaptation
over-silencing a source shows as a level far below 0); and the mean whole-song SDR of the other sources.

This sets :data:`ugosa_cli.adaptation.MOSTLY_SILENT`, the share above which ugosa warns.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ugosa_cli import hub
from ugosa_cli.demo.runner import HELD_OUT_TIMBRE, song_labels
from ugosa_cli.demo.synth import SOURCES, generate_song
from ugosa_cli.labels import activation_matrix
from ugosa_cli.metrics import mdx_sdr
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationRequest

SEED_BASE = 2_000_200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="registry name or checkpoint file (default: demo)")
    parser.add_argument("--songs", type=int, default=4, help="number of songs (source k mod 4 is stretched)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per song")
    parser.add_argument("--shares", default="0.25,0.375,0.5", help="comma-separated shares of the song to silence")
    parser.add_argument("--epochs", type=int, default=None, help="override the model's recommended epochs")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser.parse_args(argv)


def stretched_rest(activations: np.ndarray, source: int, share: float) -> np.ndarray:
    """``activations`` with ``source`` silent for ``share`` of the song, from where its first rest begins."""
    result = activations.copy()
    frames = activations.shape[1]
    first = int(np.argmax(activations[source] < 0.5))
    result[source, (first + np.arange(int(share * frames))) % frames] = 0
    return result


def level_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(estimate.astype(np.float64) ** 2) / np.mean(reference.astype(np.float64) ** 2)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.time()
    loaded = hub.resolve_model(args.model, offline=True)
    model = loaded.model
    pipeline = GuidedSeparator(loaded, adaptation=AdaptationRequest(epochs=args.epochs))
    shares = [float(s) for s in args.shares.split(",")]
    print(f"model {loaded.name} (sha256 {loaded.sha256[:8]}), {args.songs} songs x {args.duration:g} s, "
          f"seeds {SEED_BASE}.., {pipeline.strategy}, {args.epochs or 'the recommended'} epochs")
    print(f"{'song':>4} {'source':<7} {'share':>5} {'SDR B0':>7} {'adapted':>7} {'level B0':>8} {'adapted':>7} "
          f"{'others B0':>9} {'adapted':>7}")
    rows = []
    for k in range(args.songs):
        timbre = HELD_OUT_TIMBRE if k % 2 == 0 else -HELD_OUT_TIMBRE
        song = generate_song(SEED_BASE + k, duration=args.duration, samplerate=model.samplerate,
                             channels=model.audio_channels, timbre=timbre, rests="quarters")
        quarters = activation_matrix(song_labels(song), song.samplerate, song.frames)
        source = k % len(SOURCES)
        for share in shares:
            activations = stretched_rest(quarters, source, share)
            stems = np.stack([song.stems[name] for name in SOURCES]) * activations[:, None, :]
            mix = stems.sum(axis=0).astype(np.float32)
            plan = pipeline.plan_array(mix, activations, estimate=False)
            before = pipeline.separate_array(mix).model
            pipeline.adapt(plan)
            after = pipeline.separate_array(mix).model
            plays = activations[source] > 0.5
            others = [i for i in range(len(SOURCES)) if i != source]
            row = {
                "share": share,
                "sdr": [mdx_sdr(stems[source][:, plays], est[source][:, plays]) for est in (before, after)],
                "level": [level_db(stems[source][:, plays], est[source][:, plays]) for est in (before, after)],
                "others": [float(np.mean([mdx_sdr(stems[i], est[i]) for i in others])) for est in (before, after)],
            }
            rows.append(row)
            print(f"{k:>4} {SOURCES[source]:<7} {share:>5.3f} {row['sdr'][0]:>7.2f} {row['sdr'][1]:>7.2f} "
                  f"{row['level'][0]:>8.2f} {row['level'][1]:>7.2f} {row['others'][0]:>9.2f} {row['others'][1]:>7.2f}",
                  flush=True)
    print("\nmeans over songs: share, SDR gain of the stretched source, its level after, SDR gain of the others")
    for share in shares:
        chosen = [r for r in rows if r["share"] == share]
        gain = np.mean([r["sdr"][1] - r["sdr"][0] for r in chosen])
        level = np.mean([r["level"][1] for r in chosen])
        others = np.mean([r["others"][1] - r["others"][0] for r in chosen])
        print(f"{share:.3f}  {gain:+.2f} dB  {level:+.2f} dB  {others:+.2f} dB")
    print(f"\n{(time.time() - began) / 60:.1f} min, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
