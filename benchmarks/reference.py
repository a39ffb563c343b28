"""The reference implementation the benchmarks compare against: demucs 2.0.3, installed from PyPI at run time.

demucs 2.0.3 defined and published the ConvTasNet weights ugosa loads. Only its ``tasnet`` and ``utils``
modules are used; ``--no-deps`` keeps pip from replacing our torch, and ``diffq``/``tqdm`` are the two
imports ``demucs.utils`` needs. Nothing of it is committed: it is installed into a cache folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REFERENCE_PACKAGES = ("demucs==2.0.3", "diffq", "tqdm")
DEFAULT_DIR = Path(__file__).resolve().parent / ".reference"


def import_demucs(target: Path = DEFAULT_DIR):
    """Install demucs 2.0.3 into ``target`` if needed and return ``(ConvTasNet, apply_model)``."""
    if not (target / "demucs" / "tasnet.py").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *REFERENCE_PACKAGES],
            check=True,
        )
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    from demucs.tasnet import ConvTasNet
    from demucs.utils import apply_model

    return ConvTasNet, apply_model
