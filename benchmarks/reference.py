"""The reference implementations the benchmarks and tests compare against, installed from PyPI at run time.

* demucs 2.0.3 defined and published the ConvTasNet weights ugosa loads. Only its ``tasnet`` and ``utils``
  modules are used; ``diffq``/``tqdm`` are the two imports ``demucs.utils`` needs.
* demucs 4.1.0 defined and published the HT-Demucs weights. Only ``demucs.htdemucs`` and ``demucs.apply``
  (with the modules they import) are used; they need ``einops``, ``julius`` and ``tqdm``.

``--no-deps`` keeps pip from replacing our torch. Nothing of it is committed: each version is installed into
its own cache folder. Both packages are called ``demucs``, so importing one version first drops the other's
``demucs*`` entries from ``sys.modules`` and puts its own folder first on ``sys.path``; one process can use
both in turn (objects already built keep working).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REFERENCE_PACKAGES = ("demucs==2.0.3", "diffq", "tqdm")
DEFAULT_DIR = Path(__file__).resolve().parent / ".reference"
V4_PACKAGES = ("demucs==4.1.0", "einops", "julius", "tqdm")
V4_DIR = DEFAULT_DIR / "demucs-4.1.0"


def _install(target: Path, marker: str, packages: tuple[str, ...]) -> None:
    if not (target / marker).exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *packages],
            check=True,
        )


def _activate(target: Path) -> None:
    """Make ``import demucs`` load the copy in ``target``."""
    for name in list(sys.modules):
        if name == "demucs" or name.startswith("demucs."):
            del sys.modules[name]
    for folder in (DEFAULT_DIR, V4_DIR):
        while str(folder) in sys.path:
            sys.path.remove(str(folder))
    sys.path.insert(0, str(target))


def import_demucs(target: Path = DEFAULT_DIR):
    """Install demucs 2.0.3 into ``target`` if needed and return ``(ConvTasNet, apply_model)``."""
    _install(target, "demucs/tasnet.py", REFERENCE_PACKAGES)
    _activate(target)
    from demucs.tasnet import ConvTasNet  # noqa: E402
    from demucs.utils import apply_model  # noqa: E402

    return ConvTasNet, apply_model


def import_demucs_v4(target: Path = V4_DIR) -> tuple[Any, Any]:
    """Install demucs 4.1.0 into ``target`` if needed and return ``(HTDemucs, apply_model)``."""
    _install(target, "demucs/htdemucs.py", V4_PACKAGES)
    _activate(target)
    from demucs.apply import apply_model  # noqa: E402
    from demucs.htdemucs import HTDemucs  # noqa: E402

    assert HTDemucs.__module__ == "demucs.htdemucs" and "4.1.0" in sys.modules["demucs"].__version__
    return HTDemucs, apply_model
