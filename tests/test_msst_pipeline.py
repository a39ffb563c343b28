"""BS-RoFormer, Mel-Band RoFormer and SCNet through the guided pipeline: labels, the label filters, a small
adaptation per type, the strategies they offer, two-stem vocal models, and the plan's word on slow CPUs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_msst_config import RATE, TYPES, write_msst

from ugosa_cli import planning
from ugosa_cli.adaptation import AdaptationSettings, Adapter
from ugosa_cli.checkpoint import LoadedModel, MSSTSource, load_model_file, read_model
from ugosa_cli.labels import read_labels, source_for_name
from ugosa_cli.models import family_of
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationRequest
from ugosa_cli.strategy import Strategy, strategy_table, trained_parameters

SECONDS = 2.0


def _song(folder: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(int(SECONDS * RATE)) / RATE
    voice = 0.3 * np.sin(2 * np.pi * 330 * t) * (t < 1.0)
    band = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.02 * rng.standard_normal(t.shape)
    mix = np.stack([voice + band, 0.8 * voice + band]).astype(np.float32)
    path = folder / "song.wav"
    sf.write(path, mix.T, RATE, subtype="FLOAT")
    return path, mix


def _labels(folder: Path, kind: str, rest: str = "instrumental") -> Path:
    """Vocals sing in the first second; the rest plays from 0.5 s (SCNet: drums, bass, other from 0.5 s too)."""
    lines = ["0\t1\tvocals"]
    lines += [f"0.5\t2\t{name}" for name in (("drums", "bass", "other") if kind == "scnet" else (rest,))]
    path = folder / "labels.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _stems(stdout: str) -> dict[str, np.ndarray]:
    return {name: sf.read(path, always_2d=True)[0].T for name, path in json.loads(stdout)["stems"].items()}


def _options(kind: str) -> dict[str, object]:
    return {"target": "vocals"} if kind != "scnet" else {}


@pytest.mark.slow  # over a second: CI runs it
@pytest.mark.parametrize("kind", TYPES)
def test_labels_gate_and_resplit_the_stems_of_each_type(cli, tmp_path, kind):
    config, ckpt, _ = write_msst(tmp_path, kind, **_options(kind))
    song, mix = _song(tmp_path)
    labels = _labels(tmp_path, kind)
    common = ("--model", ckpt, "--config", config, "--labels", labels, "--strategy", "B0", "--bits", "32",
              "--clip-mode", "none", "--json")
    gated = cli("separate", song, "-o", tmp_path / "gate", "--gate", *common)
    resplit = cli("separate", song, "-o", tmp_path / "resplit", "--resplit", *common)
    assert gated.exit_code == 0 and resplit.exit_code == 0, gated.stderr + resplit.stderr
    window = 512
    gate, split = _stems(gated.stdout), _stems(resplit.stdout)
    rest = [name for name in gate if name != "vocals"]
    for stems in (gate, split):
        assert np.abs(stems["vocals"][:, RATE + window :]).max() == 0  # labelled silent after 1 s
        for name in rest:
            assert np.abs(stems[name][:, : RATE // 2 - window]).max() == 0  # silent before 0.5 s
    np.testing.assert_allclose(sum(split.values()), mix, atol=1e-4)  # the resplit hands the mix on whole


@pytest.mark.parametrize("kind", TYPES)
def test_one_adaptation_step_of_each_type_changes_only_what_its_cut_trains(tmp_path, kind):
    config, ckpt, _ = write_msst(tmp_path, kind, **_options(kind))
    model, _ = read_model(ckpt, MSSTSource(config))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    mix = _song(tmp_path)[1][:, : RATE // 2]
    activations = np.ones((len(model.sources), mix.shape[1]), np.float32)
    activations[0, RATE // 4 :] = 0  # the first source rests in the second half
    strategy = Strategy.parse("P-L4:D")
    settings = AdaptationSettings(strategy=strategy, epochs=1, lr=1e-2, window=0.5, guard=0.0, anchor=0.0)
    result = Adapter(model, mix, activations, settings).run()
    assert result.steps == 1 and np.isfinite(result.history[0]["loss"])
    changed = {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}
    trained = {name for name, parameter in model.named_parameters()
               if any(parameter is p for p in trained_parameters(model, strategy))}
    assert changed and changed <= trained


@pytest.mark.slow  # over a second: CI runs it
@pytest.mark.parametrize("kind", TYPES)
def test_a_small_adaptation_of_each_type_trains_only_its_cut_and_keeps_its_configuration(cli, tmp_path, kind):
    config, ckpt, _ = write_msst(tmp_path, kind, **_options(kind))
    song, _ = _song(tmp_path)
    labels = _labels(tmp_path, kind)
    out = tmp_path / "adapted.th"
    result = cli("adapt", song, "--model", ckpt, "--config", config, "--labels", labels, "--strategy", "P-L5:D",
                 "--epochs", "1", "--window", "1", "--hop", "1", "--lr", "1e-2", "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plan"]["steps"] == 2 and report["model"] == str(out)
    before, _ = read_model(ckpt, MSSTSource(config))
    after = load_model_file(out).model  # a ugosa checkpoint: no --config needed
    trained = {name for name, parameter in after.named_parameters()
               if not torch.equal(parameter, before.state_dict()[name])}
    family = family_of(after)
    allowed = {f"{prefix}.{name}" for label, module in family.trainable_parts(after, 5)
               for name, _ in module.named_parameters() for prefix in [_prefix(after, module)]}
    assert trained and trained <= allowed
    again = cli("separate", song, "--model", out, "-o", tmp_path / "o", "--json")
    assert again.exit_code == 0, again.stderr
    assert set(json.loads(again.stdout)["stems"]) == set(after.sources)


def _prefix(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, candidate in model.named_modules() if candidate is module)


def test_strategies_lists_each_types_cut_points_with_their_trainable_parameters(cli, tmp_path):
    for kind in TYPES:
        config, ckpt, _ = write_msst(tmp_path, kind)
        model, _ = read_model(ckpt, MSSTSource(config))
        rows = {row["strategy"]: row for row in strategy_table(model)}
        counts = [rows[f"P-L{k}:D"]["trainable_parameters"] for k in range(1, 6)]
        assert counts == sorted(counts, reverse=True) and counts[-1] > 0
        assert rows["B0"]["trainable_parameters"] == 0
        assert rows["P-L1:D"]["trainable_parameters"] < sum(p.numel() for p in model.parameters())  # encoder frozen
    assert rows["P-L3:D"]["trains"] == "decoder" and rows["P-L5:D"]["trains"] == "the last decoder block"
    table = cli("strategies", "--model", ckpt, "--config", config)
    assert table.exit_code == 0, table.stderr
    assert "Strategies for scnet (STFT and encoder always frozen)" in table.stdout
    assert "P-L5:D" in table.stdout and f"{counts[-1]:,}" in table.stdout


@pytest.mark.parametrize(("rest", "word"), [("instrumental", "other"), ("other", "instrumental")])
def test_a_two_stem_vocal_model_takes_labels_naming_its_rest_either_way(cli, tmp_path, rest, word):
    config, ckpt, _ = write_msst(tmp_path, "mel_band_roformer", target="vocals", instruments=("vocals", rest))
    song, _ = _song(tmp_path)
    labels = _labels(tmp_path, "mel_band_roformer", rest=word)
    result = cli("separate", song, "--model", ckpt, "--config", config, "--labels", labels, "--strategy", "B0",
                 "--gate", "--two-stems", "vocals", "-o", tmp_path / "o", "--bits", "32", "--clip-mode", "none",
                 "--json")
    assert result.exit_code == 0, result.stderr
    stems = _stems(result.stdout)
    assert set(stems) == {"vocals", "no_vocals"}
    assert np.abs(stems["no_vocals"][:, : RATE // 2 - 512]).max() == 0  # the rest, labelled silent before 0.5 s
    assert np.abs(stems["vocals"][:, RATE + 512 :]).max() == 0


def test_the_plan_says_plainly_when_a_model_is_too_slow_to_adapt_on_a_cpu(tmp_path, monkeypatch):
    config, ckpt, _ = write_msst(tmp_path, "bs_roformer", target="vocals")
    model, _ = read_model(ckpt, MSSTSource(config))
    song, mix = _song(tmp_path)
    labels = read_labels(_labels(tmp_path, "bs_roformer"), sources=model.sources, duration=SECONDS)
    separator = GuidedSeparator(LoadedModel(model, "big", "0" * 64), adaptation=AdaptationRequest(
        strategy=Strategy.parse("P-L5:D")))
    from ugosa_cli.audio import Audio

    monkeypatch.setattr(planning, "SLOW_CPU_STEP_SECONDS", 0.0)  # any measured step is "slow" here
    plan = separator.plan(Audio(mix, RATE, str(song)), labels)
    warning = next(line for line in plan.warnings if "too slow to adapt on a CPU" in line)
    assert warning.startswith("RoFormer at this size is too slow to adapt on a CPU: one training step took ")
    assert "the paper's protocol (10 steps over 1 window of this song)" in warning
    assert "adapting it takes a CUDA GPU (--device cuda) with at least 1 GiB of memory" in warning
    monkeypatch.setattr(planning, "SLOW_CPU_STEP_SECONDS", 1e9)
    assert not any("too slow" in line for line in separator.plan(Audio(mix, RATE, str(song)), labels).warnings)


def test_words_for_the_rest_name_the_second_source_of_two_source_models_only():
    assert source_for_name("other", ("vocals", "instrumental")) == "instrumental"
    assert source_for_name("Karaoke", ("vocals", "other")) == "other"
    assert source_for_name("vox", ("vocals", "instrumental")) == "vocals"
    assert source_for_name("instrumental", ("drums", "bass", "other", "vocals")) is None  # not a synonym of other
