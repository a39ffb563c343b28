"""Peak memory of separating an N-minute stereo clip, measured in a fresh subprocess.

    python benchmarks/memory.py --minutes 10            # full-size tasnet (slow on a CPU: ~1x real time at best)
    python benchmarks/memory.py --minutes 10 --tiny     # the memory structure with a small model (CI smoke test)

The child builds the model, synthesises noise as the song, separates it with ``separate_array`` and reports
its peak resident set size (``ru_maxrss``), next to the song-sized arrays it cannot avoid: the mixture
and the stems.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

TINY = dict(N=32, B=32, H=64, X=3, R=2)


def child(minutes: float, tiny: bool) -> dict[str, float]:
    import numpy as np
    import torch

    from ugosa_cli.model import ConvTasNet, ModelConfig
    from ugosa_cli.separation import separate_array

    torch.manual_seed(0)
    model = ConvTasNet(ModelConfig(**TINY) if tiny else ModelConfig()).eval()
    frames = int(minutes * 60 * model.samplerate)
    mix = (np.random.default_rng(0).standard_normal((2, frames), dtype=np.float32) * 0.1)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stems = separate_array(model, mix)
    return {
        "minutes": minutes,
        "model": "tiny" if tiny else "tasnet (full size)",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "before_separation_mb": baseline,
        "mix_mb": mix.nbytes / 2**20,
        "stems_mb": stems.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tiny", action="store_true", help="small model (the song-sized arrays are the same)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.minutes, args.tiny)))
        return
    command = [sys.executable, __file__, "--child", "--minutes", str(args.minutes)] + (["--tiny"] if args.tiny else [])
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['minutes']:g} min stereo, {result['model']}: peak RSS {result['peak_rss_mb']:.0f} MB "
          f"(before separating {result['before_separation_mb']:.0f} MB; mix {result['mix_mb']:.0f} MB, "
          f"stems {result['stems_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
