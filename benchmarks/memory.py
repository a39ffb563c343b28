"""Peak memory of `ugosa separate` on an N-minute stereo 44.1 kHz WAV, measured on the real command.

    python benchmarks/memory.py --minutes 10            # full-size tasnet (random weights; slow on a CPU)
    python benchmarks/memory.py --minutes 60 --tiny     # the memory structure of a 1-hour song, small model
    python benchmarks/memory.py --minutes 10 --family htdemucs   # full-size HT-Demucs (random weights)

The song (noise, written block by block) and the model file are made in a scratch folder; then
``python -m ugosa_cli separate`` runs in a child process and its peak resident set size (``ru_maxrss``) is
read when it exits. The baseline is the same interpreter loading the same model (``ugosa strategies``):
what is above it is the separation's own working memory. For scale, the song's stems held as float32
would take ``4 x the mixture``; the command streams them to disk instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = dict(N=32, B=32, H=64, X=3, R=2)
RATE = 44100


def write_noise(path: Path, minutes: float) -> int:
    """A stereo 16-bit WAV of ``minutes`` of noise, written a block at a time; returns its frames."""
    import numpy as np
    import soundfile as sf

    frames = int(minutes * 60 * RATE)
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=RATE, channels=2, subtype="PCM_16") as handle:
        for start in range(0, frames, RATE * 10):
            handle.write(rng.standard_normal((min(RATE * 10, frames - start), 2), dtype=np.float32) * 0.1)
    return frames


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run ``python -m ugosa_cli ARGS`` alone in a child; its peak RSS in MB and its wall time in seconds."""
    began = time.perf_counter()
    pid = subprocess.Popen([sys.executable, "-m", "ugosa_cli", *args], stdout=subprocess.DEVNULL).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"ugosa {' '.join(args)} failed (status {status})")
    return usage.ru_maxrss / 1024, time.perf_counter() - began


def measure(minutes: float, tiny: bool, folder: Path, family: str = "convtasnet") -> dict[str, object]:
    import torch

    from ugosa_cli.checkpoint import save_checkpoint
    from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
    from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig

    torch.manual_seed(0)
    model_file = folder / "model.th"
    if family == "htdemucs":
        save_checkpoint(model_file, HTDemucs(HTDemucsConfig()).eval())  # the released htdemucs configuration
    else:
        save_checkpoint(model_file, ConvTasNet(ModelConfig(**TINY) if tiny else ModelConfig()))
    song = folder / "song.wav"
    frames = write_noise(song, minutes)
    baseline, _ = peak_rss_mb(["strategies", "--model", str(model_file), "--offline"])
    peak, seconds = peak_rss_mb(["separate", str(song), "--model", str(model_file), "-o", str(folder / "out"), "-q"])
    stems = sorted((folder / "out").rglob("*.wav"))
    return {
        "minutes": minutes,
        "model": "htdemucs (full size)" if family == "htdemucs" else "tiny" if tiny else "tasnet (full size)",
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "mix_float32_mb": round(frames * 2 * 4 / 2**20, 1),
        "stems_float32_mb": round(4 * frames * 2 * 4 / 2**20, 1),
        "stems_written": len(stems),
        "wall_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tiny", action="store_true", help="small model (the song-sized data is the same)")
    parser.add_argument("--family", choices=("convtasnet", "htdemucs"), default="convtasnet")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ugosa-memory-") as scratch:
        result = measure(args.minutes, args.tiny, Path(scratch), args.family)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['minutes']:g} min stereo 44.1 kHz, {result['model']}: `ugosa separate` peak RSS "
        f"{result['peak_rss_mb']:.0f} MB (loading the model alone: {result['baseline_rss_mb']:.0f} MB; the mix as "
        f"float32 would be {result['mix_float32_mb']:.0f} MB, its stems {result['stems_float32_mb']:.0f} MB); "
        f"{result['stems_written']} stems written in {result['wall_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
