"""Where stems go and how they are written: the file-name template, stem selection, clipping, formats."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ugosa_cli.audio import BIT_DEPTHS, CLIP_MODES, FORMATS, ClipMode, prepare_clip, subtype_for, write_audio
from ugosa_cli.errors import InputError

DEFAULT_TEMPLATE = "{model}/{track}/{stem}.{ext}"
TEMPLATE_FIELDS = ("model", "track", "stem", "ext")


@dataclass(frozen=True)
class OutputSpec:
    """How to name and encode stems."""

    root: Path = Path("separated")
    template: str = DEFAULT_TEMPLATE
    fmt: str = "wav"
    bits: int = 16
    clip_mode: ClipMode = "rescale"

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InputError(f"--format {self.fmt}: use one of {', '.join(FORMATS)}")
        if self.bits not in BIT_DEPTHS:
            raise InputError(f"--bits {self.bits}: use one of {', '.join(map(str, BIT_DEPTHS))}")
        if self.clip_mode not in CLIP_MODES:
            raise InputError(f"--clip-mode {self.clip_mode}: use one of {', '.join(CLIP_MODES)}")
        subtype_for(self.fmt, self.bits)
        fields = {name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None}
        unknown = sorted(fields - set(TEMPLATE_FIELDS))
        if unknown:
            raise InputError(
                f"--filename {self.template!r}: unknown field {{{unknown[0]}}}; "
                f"use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
        if "stem" not in fields:
            raise InputError(f"--filename {self.template!r}: must contain {{stem}} so each stem gets its own file")

    def path(self, *, model: str, track: str, stem: str) -> Path:
        return self.root / self.template.format(model=model, track=track, stem=stem, ext=self.fmt)


def select_stems(
    stems: np.ndarray,
    sources: tuple[str, ...],
    *,
    keep: tuple[str, ...] | None = None,
    two_stems: str | None = None,
) -> dict[str, np.ndarray]:
    """Name the model's stems and apply ``--stems`` (a subset) or ``--two-stems`` (STEM and no_STEM)."""
    for name in (keep or ()) + ((two_stems,) if two_stems else ()):
        if name not in sources:
            raise InputError(f"stem {name!r} is not produced by this model; it makes {', '.join(sources)}")
    named = dict(zip(sources, stems))
    if two_stems:
        rest = sum(stem for name, stem in named.items() if name != two_stems)
        return {two_stems: named[two_stems], f"no_{two_stems}": np.asarray(rest, dtype=np.float32)}
    if keep:
        return {name: named[name] for name in sources if name in keep}
    return named


def write_stems(
    stems: dict[str, np.ndarray],
    samplerate: int,
    spec: OutputSpec,
    *,
    model: str,
    track: str,
    protect: tuple[Path, ...] = (),
) -> dict[str, Path]:
    """Write each stem atomically; refuse any path that would overwrite one of ``protect`` (the inputs)."""
    paths = {name: spec.path(model=model, track=track, stem=name) for name in stems}
    protected = {p.resolve() for p in protect}
    for path in paths.values():
        if path.resolve() in protected:
            raise InputError(f"{path}: refusing to overwrite the input file; choose another --out or --filename")
    scaled = prepare_clip(np.stack(list(stems.values())), spec.clip_mode)
    for samples, path in zip(scaled, paths.values()):
        write_audio(path, samples, samplerate, fmt=spec.fmt, bits=spec.bits)
    return paths


def gate_stems(stems: np.ndarray, activations: np.ndarray, samplerate: int, fade: float = 0.01) -> np.ndarray:
    """Multiply each stem (sources, channels, frames) by its activations (sources, frames).

    The 0/1 activations are smoothed by a moving average of ``fade`` seconds, so each border becomes a
    linear fade instead of a click.
    """
    width = max(1, int(round(fade * samplerate)))
    kernel = np.full(width, 1.0 / width, dtype=np.float32)
    smooth = np.stack([np.convolve(row.astype(np.float32), kernel, mode="same") for row in activations])
    return (stems * smooth[:, None, :]).astype(np.float32, copy=False)
