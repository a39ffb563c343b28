"""Train a packaged demo model on synthetic multitrack songs, on the CPU: a small ConvTasNet (``demo``, the
default ``--family convtasnet``) or a small HT-Demucs (``--family htdemucs``, sizes from ``--channels``,
``--nfft``, ``--depth``, ``--bottom-channels``, ``--t-layers``, ``--t-heads``, ``--t-hidden-scale``,
``--t-dropout`` and ``--model-segment``; the same class as the released ``htdemucs``).

Every training example is cut from songs that :func:`ugosa_cli.demo.synth.generate_song` makes on the fly
from seeds ``TRAIN_SEED_BASE + k`` (k = 0, 1, 2, ...), with a timbre drawn around 0. A pool of songs is
kept in memory and one song is replaced by a fresh seed every step. Half of the examples are remixes
(each source from a different song of the pool), every stem gets a random gain, and stereo channels are
swapped at random. The loss is the L1 distance between estimated and true stems in the normalised
domain (the mixture divided by its mono standard deviation after removing its mean), as demucs trained,
plus ``--consistency`` times the L1 distance between the sum of the estimates and the mixture: a model
whose stems add up to the mixture makes mistakes by moving sound between sources rather than losing it,
and moved sound is what the labels of guided adaptation can put back.

Validation songs use seeds from ``VALID_SEED_BASE``; the benchmark and ``ugosa demo`` use other ranges
(see ``ugosa_cli/demo/runner.py``), so no song used here is ever scored as held out.

HT-Demucs trains in train mode (transformer dropout ``--t-dropout``) on examples of its own segment, from
demucs' initialisation (every convolution's weights and bias divided by ``sqrt(std / 0.1)``, demucs'
``rescale``), with the same loss.

Run from the repository root (the ConvTasNet defaults fit in under an hour on 2 CPU cores)::

    .venv/bin/python scripts/train_demo_model.py
    .venv/bin/python scripts/train_demo_model.py --family htdemucs --max-minutes 75

It writes ``ugosa_cli/demo/<name>-<sha256[:8]>.th`` (``--name``: ``demo`` or ``demo_htdemucs``) with its
provenance and the adaptation settings the model recommends (``ADAPTATION_DEFAULTS``), and prints the
registry line for ``ugosa_cli/hub.py``. ``--init FILE --steps 0`` re-issues a model's weights with the
script's current recommendation (its provenance then holds the original's under ``initialised_from``).
``--baseline MODEL`` also scores another model (e.g. ``demo``) on the same validation songs.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ugosa_cli import __version__, hub
from ugosa_cli.checkpoint import load_model_file, save_checkpoint
from ugosa_cli.demo.synth import SOURCES, generate_song
from ugosa_cli.errors import UgosaError
from ugosa_cli.fsutil import sha256_file
from ugosa_cli.metrics import mdx_sdr
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.models.family import SeparationModel
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig, htdemucs_config_dict
from ugosa_cli.separation import SeparationOptions, separate_array

TRAIN_SEED_BASE = 1_000_000
VALID_SEED_BASE = 1_900_000
SAMPLERATE = 44100
DEMO_CONFIG = dict(N=128, L=64, B=48, H=96, P=3, X=4, R=4)
# Adaptation settings the demo models recommend for themselves (written into the checkpoint): none. They are the
# small proxies on which ugosa's own rule was chosen and is measured (BENCHMARKS.md, "Deciding what to write"), so
# they adapt as the released models do.
ADAPTATION_DEFAULTS: dict[str, Any] = {}
HTDEMUCS_ADAPTATION_DEFAULTS: dict[str, Any] = {}
FAMILIES = ("convtasnet", "htdemucs")
# Family defaults of the options left unset (None) on the command line.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "convtasnet": dict(steps=2400, lr=2e-3, segment=2.0, name="demo"),
    "htdemucs": dict(steps=400, lr=1e-3, segment=None, name="demo_htdemucs"),  # segment None: the model's
}
DEMUCS_RESCALE = 0.1  # demucs' initial rescaling of convolutions (HTDemucs(rescale=0.1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=FAMILIES, default="convtasnet", help="which network (default convtasnet)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimisation steps (default: 2400 for convtasnet, fits 1 h on 2 cores; 400 for htdemucs)")
    parser.add_argument("--batch", type=int, default=4, help="examples per step")
    parser.add_argument("--segment", type=float, default=None,
                        help="example length in seconds (default: 2 for convtasnet; the model's segment for htdemucs)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (Adam; warm-up, cosine decay; default 2e-3 convtasnet, 1e-3 htdemucs)")
    parser.add_argument("--pool", type=int, default=48, help="songs kept in memory; one is replaced each step")
    parser.add_argument("--song-seconds", type=float, default=8.0, help="length of each generated song")
    parser.add_argument("--timbre-spread", type=float, default=0.25, help="std of the training songs' timbre")
    parser.add_argument("--remix", type=float, default=0.5, help="share of examples mixed from different songs")
    parser.add_argument("--valid-songs", type=int, default=4, help="validation songs (seeds from VALID_SEED_BASE)")
    parser.add_argument("--valid-every", type=int, default=400, help="validate every this many steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and sampling")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--refresh-every", type=int, default=2, help="replace one pool song every this many steps")
    parser.add_argument(
        "--max-minutes", type=float, default=None,
        help="wall-time limit for busy machines: the schedule follows whichever of steps and time runs out first",
    )
    parser.add_argument("--consistency", type=float, default=0.0,
                        help="weight of the mixture-consistency term |sum of estimates - mix|")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this checkpoint's weights (its configuration must be the demo's)")
    parser.add_argument("--baseline", default=None,
                        help="also score this model (registry name or file, e.g. demo) on the validation songs")
    parser.add_argument("--name", default=None, help="file name prefix (default: demo, or demo_htdemucs)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "ugosa_cli" / "demo", help="where to write")
    sizes = parser.add_argument_group("HT-Demucs sizes (--family htdemucs)")
    sizes.add_argument("--channels", type=int, default=16, help="first layer's channels")
    sizes.add_argument("--nfft", type=int, default=2048, help="STFT size")
    sizes.add_argument("--depth", type=int, default=4, help="encoder/decoder layers per branch")
    sizes.add_argument("--bottom-channels", type=int, default=0, help="transformer width (0: the encoders' width)")
    sizes.add_argument("--t-layers", type=int, default=3, help="cross-transformer layers per branch")
    sizes.add_argument("--t-heads", type=int, default=4, help="attention heads")
    sizes.add_argument("--t-hidden-scale", type=float, default=2.0, help="feed-forward width / transformer width")
    sizes.add_argument("--t-dropout", type=float, default=0.0, help="transformer dropout in training")
    sizes.add_argument("--model-segment", default="3", help="the model's segment in seconds, a fraction (3, 39/5)")
    args = parser.parse_args(argv)
    for key, value in FAMILY_DEFAULTS[args.family].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def htdemucs_config(args: argparse.Namespace) -> HTDemucsConfig:
    """The HT-Demucs configuration the size options describe (44.1 kHz stereo, four sources)."""
    try:
        segment = Fraction(args.model_segment)
    except (ValueError, ZeroDivisionError):
        sys.exit(f"--model-segment {args.model_segment!r}: not a number of seconds")
    try:
        return HTDemucsConfig(
            sources=SOURCES, audio_channels=2, samplerate=SAMPLERATE, segment=segment, channels=args.channels,
            nfft=args.nfft, depth=args.depth, bottom_channels=args.bottom_channels, t_layers=args.t_layers,
            t_heads=args.t_heads, t_hidden_scale=args.t_hidden_scale, t_dropout=args.t_dropout,
        )
    except UgosaError as error:
        sys.exit(str(error))


def build_network(args: argparse.Namespace) -> ConvTasNet | HTDemucs:
    """A freshly initialised network of the chosen family, in train mode."""
    if args.family == "convtasnet":
        return ConvTasNet(ModelConfig(**DEMO_CONFIG, samplerate=SAMPLERATE)).train()
    model = HTDemucs(htdemucs_config(args))
    demucs_rescale(model, DEMUCS_RESCALE)
    return model.train()


def demucs_rescale(model: nn.Module, reference: float) -> None:
    """demucs' initialisation: each convolution's weight and bias divided by ``sqrt(weight std / reference)``."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
                scale = (module.weight.std() / reference) ** 0.5
                module.weight.div_(scale)
                if module.bias is not None:
                    module.bias.div_(scale)


def config_dict(model: SeparationModel) -> dict[str, Any]:
    """A network's configuration as plain values, whatever its family."""
    if isinstance(model, HTDemucs):
        return htdemucs_config_dict(model.config)
    if isinstance(model, ConvTasNet):
        return model.config.to_dict()
    return {"class": type(model).__name__}


class SongPool:
    """Generated songs in memory; :meth:`refresh` swaps the oldest one for a song with the next seed."""

    def __init__(self, size: int, seconds: float, timbre_spread: float, rng: np.random.Generator) -> None:
        self.seconds = seconds
        self.timbre_spread = timbre_spread
        self.rng = rng
        self.next_seed = TRAIN_SEED_BASE
        self.songs = [self._new_song() for _ in range(size)]
        self.oldest = 0

    def _new_song(self) -> np.ndarray:
        timbre = float(self.rng.normal(0.0, self.timbre_spread))
        song = generate_song(self.next_seed, duration=self.seconds, samplerate=SAMPLERATE, timbre=timbre)
        self.next_seed += 1
        return np.stack([song.stems[name] for name in SOURCES])  # (sources, channels, frames)

    def refresh(self) -> None:
        self.songs[self.oldest] = self._new_song()
        self.oldest = (self.oldest + 1) % len(self.songs)

    @property
    def seeds_used(self) -> tuple[int, int]:
        return TRAIN_SEED_BASE, self.next_seed - 1

    def example(self, frames: int, remix: bool) -> np.ndarray:
        """Stems (sources, channels, frames): one song's crop, or each source cut from a different song."""
        count = len(self.songs)
        picks = self.rng.integers(count, size=len(SOURCES)) if remix else np.full(len(SOURCES), self.rng.integers(count))
        stems = []
        for index, song_index in enumerate(picks):
            song = self.songs[song_index]
            start = int(self.rng.integers(song.shape[-1] - frames + 1))
            stem = song[index, :, start : start + frames] * 10 ** (self.rng.uniform(-6.0, 3.0) / 20)
            stems.append(stem[::-1] if self.rng.random() < 0.5 else stem)
        return np.stack(stems)


def normalised_batch(stems: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(mix, targets) in the normalised domain, each example by its own mono mixture's mean and std."""
    stems_t = torch.from_numpy(np.ascontiguousarray(stems, dtype=np.float32))  # (batch, sources, channels, t)
    mix = stems_t.sum(dim=1)
    mono = mix.mean(dim=1)
    mean = mono.mean(dim=-1).view(-1, 1, 1)
    std = mono.std(dim=-1).clamp_min(1e-5).view(-1, 1, 1)
    return (mix - mean) / std, (stems_t - mean.unsqueeze(1)) / std.unsqueeze(1)


def learning_rate(progress: float, peak: float) -> float:
    """Linear warm-up over the first 5 % of training, then cosine decay to 5 % of ``peak``."""
    if progress < 0.05:
        return peak * max(progress, 0.001) / 0.05
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - 0.05) / 0.95))))


def validation_sdr(model: SeparationModel, songs: list[np.ndarray]) -> dict[str, float]:
    """Whole-song SDR per source (MDX definition), averaged over the validation songs."""
    model.eval()
    scores = {name: [] for name in SOURCES}
    for stems in songs:
        estimates = separate_array(model, stems.sum(axis=0), SeparationOptions())
        for index, name in enumerate(SOURCES):
            scores[name].append(mdx_sdr(stems[index], estimates[index]))
    model.train()
    return {name: round(float(np.mean(values)), 3) for name, values in scores.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    began = time.time()

    model = build_network(args)  # ConvTasNet trains through models/convtasnet.py's fast depthwise backward on CPUs
    config = config_dict(model)
    frames = int(args.segment * SAMPLERATE) if args.segment is not None else model.segment_length
    if model.max_segment_length is not None and frames > model.max_segment_length:
        sys.exit(f"--segment {args.segment:g}: longer than the model's segment of {args.model_segment} s")
    initial = None
    if args.init is not None:
        try:
            start = load_model_file(args.init)
        except UgosaError as error:
            sys.exit(f"--init: {error}")
        if type(start.model) is not type(model) or config_dict(start.model) != config:
            sys.exit(f"{args.init}: its configuration {config_dict(start.model)} is not the demo's")
        model.load_state_dict(start.model.state_dict())
        initial = {"file": args.init.name, "sha256": start.sha256, "provenance": start.provenance}
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    pool = SongPool(args.pool, args.song_seconds, args.timbre_spread, rng)
    valid = [
        np.stack([song.stems[name] for name in SOURCES])
        for song in (generate_song(VALID_SEED_BASE + k, duration=8.0) for k in range(args.valid_songs))
    ]
    baseline = None
    if args.baseline is not None:
        try:
            other = hub.resolve_model(args.baseline, offline=True)
        except UgosaError as error:
            sys.exit(f"--baseline: {error}")
        sdr = validation_sdr(other.model, valid)
        baseline = {"model": other.name, "sha256": other.sha256, "validation_sdr_db": sdr}
        print(f"baseline {other.name} ({other.sha256[:8]}) validation SDR: {sdr} mean {np.mean(list(sdr.values())):.2f} dB",
              flush=True)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model {args.family} {config}: {parameters:,} parameters; examples of {frames} samples; pool of "
          f"{args.pool} songs ready in {time.time() - began:.0f} s", flush=True)

    history = []
    running = 0.0
    steps_done = 0
    for step in range(args.steps):
        progress = step / args.steps
        if args.max_minutes is not None:
            progress = max(progress, (time.time() - began) / (60 * args.max_minutes))
            if progress >= 1:
                print(f"stopping at step {step}: --max-minutes {args.max_minutes} reached", flush=True)
                break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(progress, args.lr)
        stems = np.stack([pool.example(frames, rng.random() < args.remix) for _ in range(args.batch)])
        mix, targets = normalised_batch(stems)
        estimates = model(mix)
        loss = (estimates - targets).abs().mean()
        if args.consistency:
            loss = loss + args.consistency * (estimates.sum(dim=1) - mix).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step % args.refresh_every == 0:
            pool.refresh()
        steps_done = step + 1
        running += loss.item()
        if steps_done % 50 == 0:
            print(f"step {steps_done}/{args.steps} loss {running / 50:.4f} "
                  f"lr {optimizer.param_groups[0]['lr']:.2e} {time.time() - began:.0f} s", flush=True)
            running = 0.0
        if steps_done % args.valid_every == 0:
            sdr = validation_sdr(model, valid)
            history.append({"step": steps_done, "sdr": sdr})
            print(f"validation at step {steps_done}: {sdr} mean {np.mean(list(sdr.values())):.2f} dB", flush=True)

    final = validation_sdr(model, valid)
    print(f"final validation SDR: {final} mean {np.mean(list(final.values())):.2f} dB", flush=True)
    minutes = (time.time() - began) / 60
    network = "ConvTasNet" if args.family == "convtasnet" else "HT-Demucs"
    provenance = {
        "description": f"ugosa demo model: small {network} trained on synthetic songs (ugosa_cli.demo.synth)",
        "trained_by": "scripts/train_demo_model.py",
        "command": " ".join(["scripts/train_demo_model.py", *(argv if argv is not None else sys.argv[1:])]),
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out_dir"},
        "steps_done": steps_done,
        "train_seeds": list(pool.seeds_used),
        "valid_seeds": [VALID_SEED_BASE, VALID_SEED_BASE + args.valid_songs - 1],
        "config": config,
        "parameters": parameters,
        "loss": "L1 on stems in the normalised domain (mix mono mean/std)"
        + (f" + {args.consistency:g} x L1 between the sum of the stems and the mix" if args.consistency else ""),
        "initialised_from": initial,
        "optimizer": "Adam, linear warm-up and cosine decay",
        **({} if args.family == "convtasnet" else {
            "family": args.family,
            "initialisation": f"demucs' (convolutions rescaled to reference {DEMUCS_RESCALE:g})",
            "train_mode": f"train mode, transformer dropout {args.t_dropout:g}, examples of {frames} samples",
        }),
        "validation_sdr_db": final,
        "validation_metric": "whole-song SDR (MDX), mean over validation songs of 8 s",
        "validation_history": history,
        **({} if baseline is None else {"baseline": baseline}),
        "adaptation_defaults": ADAPTATION_DEFAULTS if args.family == "convtasnet" else HTDEMUCS_ADAPTATION_DEFAULTS,
        "minutes": round(minutes, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip() + f", {args.threads} torch threads",
        "torch": str(torch.__version__),
        "ugosa_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out_dir) as folder:
        staging = Path(folder) / f"{args.name}.th"
        save_checkpoint(staging, model.eval(), provenance)
        target = args.out_dir / f"{args.name}-{sha256_file(staging)[:8]}.th"
        staging.replace(target)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) after {minutes:.1f} min")
    print("registry line for ugosa_cli/hub.py:")
    print(f'        ModelEntry("{args.name}", ("{target.name}",), "Small {network} trained on synthetic songs (offline demo)", '
          "packaged=True),")


if __name__ == "__main__":
    main()
