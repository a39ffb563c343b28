"""No written path leaves ``--out``: whatever the song, model, source names and ``--filename`` template are,
every stem path resolves inside ``--out``, or the input is refused with :class:`InputError` (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.errors import InputError
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.output import DEFAULT_TEMPLATE, OutputSpec

from conftest import TINY_CONFIG, tone_mix

# Pieces templates are made of: the fields, separators, dot parts, braces, format specs, conversions, indexes,
# absolute starts, control characters and plain text.
_PIECES = st.sampled_from([
    "{model}", "{track}", "{stem}", "{ext}", "/", "\\", "..", ".", "{", "}", "{{", "}}", "{stem:.0}", "{stem!r}",
    "{stem[0]}", "{stem.x}", "{}", "{0}", "~", "a", "-", " ", "/tmp", "C:", "\x00", "\x1b", "\n",
])
TEMPLATES = st.one_of(
    st.just(DEFAULT_TEMPLATE),
    st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=10).map("".join),
)
# Names as they reach OutputSpec.path: any text (a stem of a file name, a model given by path or URL).
NAMES = st.one_of(
    st.sampled_from(["", ".", "..", "...", "/", "\\", "../..", "a/../..", "~", "-", "\x00", "\x1b[2J", "C:\\x"]),
    st.text(max_size=12),
    st.text(max_size=12).map(lambda name: Path(name.replace("/", "_").replace("\x00", "_") + ".wav").stem or "x"),
)
SOURCE_LISTS = st.one_of(
    st.just(["drums", "bass", "other", "vocals"]),
    st.lists(st.one_of(NAMES, st.from_regex(r"[a-z0-9][a-z0-9_-]{0,40}", fullmatch=True)), min_size=1, max_size=5),
)


@pytest.fixture(scope="module")
def out_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deep") / "er" / "out"


@pytest.mark.slow  # over a second: CI runs it
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=TEMPLATES, model=NAMES, track=NAMES, sources=SOURCE_LISTS)
@example(template="../x/{stem}.{ext}", model="m", track="t", sources=["drums"])
@example(template="/abs/{stem}.{ext}", model="m", track="t", sources=["drums"])
@example(template="\x00{stem}", model="m", track="t", sources=["drums"])
@example(template="{stem:.0}.{ext}", model="m", track="t", sources=["drums", "bass"])
@example(template=DEFAULT_TEMPLATE, model="..", track="..", sources=["drums"])
@example(template="{model}{track}/{stem}", model=".", track=".", sources=["drums"])
@example(template=DEFAULT_TEMPLATE, model="m", track="t", sources=["../../../../../x", "bass"])
def test_every_stem_path_resolves_inside_out_or_the_input_is_refused(out_root, template, model, track, sources):
    try:
        spec = OutputSpec(root=out_root, template=template)
        config = ModelConfig(sources=tuple(sources))  # what every model file loader builds
    except InputError:
        return
    root = out_root.resolve()
    paths = spec.paths(model=model, track=track, stems=config.sources)  # no symlinks here: must not refuse
    assert len(set(paths.values())) == len(config.sources)
    for path in paths.values():
        resolved = path.resolve()
        assert resolved.is_relative_to(root) and resolved != root, (template, model, track, path)


# ---------------------------------------------------------------- end to end, one case per escape route


def _new_files(tmp_path: Path, before: set[Path]) -> list[Path]:
    return sorted(p for p in tmp_path.rglob("*") if p.is_file() and p not in before)


def _checkpoint_with_source(path: Path, source: str) -> Path:
    torch.manual_seed(0)
    torch.save({
        "format": "ugosa-checkpoint", "version": 1,
        "config": {**TINY_CONFIG.to_dict(), "sources": [source, "bass", "other", "vocals"]},
        "sources": [source, "bass", "other", "vocals"], "samplerate": TINY_CONFIG.samplerate,
        "state_dict": ConvTasNet(TINY_CONFIG).state_dict(), "provenance": {},
    }, path)
    return path


@pytest.mark.parametrize("route", ["template-dotdot", "template-absolute", "track-dotdot", "model-dotdot",
                                   "source-dotdot"])
def test_no_route_writes_outside_out(cli, tmp_path, tiny_model, route):
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "a" / "b" / "c" / "out"
    song = inputs / ("...wav" if route == "track-dotdot" else "song.wav")
    sf.write(song, tone_mix(0.2, 8000), 8000, format="WAV")
    model = inputs / ("...th" if route == "model-dotdot" else "tiny.th")
    if route == "source-dotdot":
        _checkpoint_with_source(model, "../x")
    else:
        save_checkpoint(model, tiny_model)
    template = {"template-dotdot": "../x/{stem}.{ext}",
                "template-absolute": os.fspath(tmp_path / "abs" / "{stem}.{ext}")}.get(route, DEFAULT_TEMPLATE)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    result = cli("separate", song, "--model", model, "-o", out, "--filename", template)
    created = _new_files(tmp_path, before)
    if route in ("track-dotdot", "model-dotdot"):
        assert result.exit_code == 0, result.stderr
        assert len(created) == 4
    else:
        assert result.exit_code == 2, result.stderr
        assert created == []
    outside = [p for p in created if not p.resolve().is_relative_to(out.resolve())]
    assert outside == [], f"written outside --out: {outside}"
