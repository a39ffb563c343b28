"""Adapting HT-Demucs (and bags of them) to one song: the cut points, exact prefix caching, training,
checkpoints, six sources and the CLI flows, on small HT-Demucs of the released structure."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf
import torch
from test_htdemucs import SMALL_SIZES, small_model

from ugosa_cli.adaptation import AdaptationSettings, Adapter
from ugosa_cli.checkpoint import load_model_file, save_checkpoint
from ugosa_cli.models import family_of
from ugosa_cli.models.bag import ModelBag
from ugosa_cli.models.htdemucs import SIX_SOURCES, HTDemucs, HTDemucsConfig
from ugosa_cli.separation import separate_array
from ugosa_cli.strategy import Strategy, count_trainable, strategy_table

RATE = 8000


def _song(seconds: float = 2.0, sources: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    t = np.arange(int(seconds * RATE)) / RATE
    mix = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 110 * t)]) + 0.05 * rng.standard_normal((2, t.size))
    acts = np.ones((sources, t.size), np.float32)
    acts[3, : int(0.7 * RATE)] = 0  # vocals rest for 0.7 s
    acts[0, int(1.5 * RATE) :] = 0  # drums stop after 1.5 s
    return mix.astype(np.float32), acts


def _settings(strategy: str, **kw) -> AdaptationSettings:
    return AdaptationSettings(**{"strategy": strategy, "window": 0.5, "hop": 0.5, "epochs": 2, "lr": 1e-3,
                                 "optimizer": "adam", **kw})


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_prefix_then_suffix_equals_the_whole_model(cut):
    model = small_model(1)
    split = family_of(model).split(model, cut)
    x = torch.randn(2, 2, 4000)
    with torch.no_grad():
        torch.testing.assert_close(split.suffix(split.prefix(x), 4000), model(x), rtol=0, atol=0)


def test_the_cut_points_span_the_papers_range_on_the_released_model():
    from reference import htdemucs_kwargs

    from ugosa_cli.models.htdemucs import config_from_kwargs

    model = HTDemucs(config_from_kwargs(htdemucs_kwargs()))
    total = sum(p.numel() for p in model.parameters())
    shares = {row["strategy"]: row["trainable_parameters"] / total for row in strategy_table(model, "P")}
    assert 0.7 < shares["P-L1:D"] < 0.8 and shares["P-L5:D"] < 0.005  # the paper: 75 % down to the decoder
    assert shares["P-L1:D"] > shares["P-L2:D"] > shares["P-L3:D"] > shares["P-L4:D"] > shares["P-L5:D"]


def test_the_cpu_plan_gives_cheaper_strategies_more_training_on_the_released_model():
    from ugosa_cli.planning import fit_to_budget

    with torch.device("meta"):  # shapes only: the costs are the family's, no weights needed
        model = HTDemucs(HTDemucsConfig())
    frames = 180 * model.samplerate  # a 3-minute song
    window_flop = family_of(model).forward_flops(model, int(7.8 * model.samplerate))
    steps = []
    for cut in (1, 2, 3, 4, 5):
        prefix, step = family_of(model).relative_cost(model, cut, recompute=True)
        kept_prefix, kept_step = family_of(model).relative_cost(model, cut, recompute=False)
        assert 0 < prefix == kept_prefix < 1 and 0 < kept_step < step
        settings = AdaptationSettings(strategy=f"P-L{cut}:D", window=7.8)
        planned, _ = fit_to_budget(settings, frames=frames, samplerate=model.samplerate, step_cost=step,
                                   prefix_cost=prefix, window_flop=window_flop)
        windows = planned.max_windows or int(np.ceil(frames / (7.8 * model.samplerate)))
        steps.append(planned.steps)
        # Within the budget: about one more separation, in forwards of one window (and the checks' forwards).
        separation = frames / (7.8 * model.samplerate) * 4 / 3
        assert windows * (prefix + 2 * (1 - prefix)) + planned.steps * step <= separation + step
    assert steps == sorted(steps) and steps[-1] > 3 * steps[0]


@pytest.mark.parametrize("strategy", ["P-L1:D", "P-L2:D", "P-L3:D", "P-L4:D", "P-L5:D", "M-L3:D"])
def test_frozen_parameters_stay_bit_identical_and_exactly_tp_numbers_move(strategy):
    model = small_model(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Adapter(model, *_song(), _settings(strategy)).run()
    moved = sum(int((value != before[key]).sum()) for key, value in model.state_dict().items())
    changed = {key for key, value in model.state_dict().items() if not torch.equal(value, before[key])}
    assert not any(key.startswith(("encoder", "tencoder", "freq_emb")) for key in changed)
    trainable = count_trainable(model, Strategy.parse(strategy))
    assert 0.99 * trainable <= moved <= trainable  # every trained number moves (a few may land on the same value)


@pytest.mark.slow  # over a second: CI runs it
def test_cached_prefix_gives_the_same_updates_as_recomputing_it():
    states = []
    for cache_bytes in (1 << 30, 0):
        model = small_model(1)
        Adapter(model, *_song(), _settings("P-L2:D", cache_bytes=cache_bytes)).run()
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


@pytest.mark.slow  # about 2 s: CI runs it
def test_timing_a_short_slice_before_training_on_longer_windows():
    # The plan times steps on a slice shorter than the window (here 1 s of a 2 s segment); training afterwards
    # must still run on the whole windows (it once failed: "every window ... must have the same length").
    model = HTDemucs(HTDemucsConfig(**SMALL_SIZES, segment=Fraction(2))).eval()
    mix, acts = _song(4.0)
    adapter = Adapter(model, mix, acts, _settings("P-L2:D", window=2.0, hop=2.0, steps=2))
    step_seconds, prefix_seconds = adapter.measure(seconds=1.0, steps=1)
    assert step_seconds > 0 and prefix_seconds > 0
    result = adapter.run()
    assert result.steps == 2 and adapter.window == 2 * model.samplerate


@pytest.mark.slow  # among the slowest: CI runs it
def test_recomputing_activations_gives_the_same_updates():
    states = []
    for recompute in (False, True):
        model = small_model(1)
        adapter = Adapter(model, *_song(), _settings("P-L1:D"))
        assert adapter.split is not None
        adapter.split.recompute = recompute
        adapter.run()
        states.append(model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=1e-6)


def _silent_power(model: torch.nn.Module, mix: np.ndarray, acts: np.ndarray) -> dict[int, float]:
    """Each source labelled silent somewhere: the mean power of its stem there."""
    power = (separate_array(model, mix) ** 2).mean(axis=1)
    return {i: float(power[i][acts[i] < 0.5].mean()) for i in range(len(acts)) if (acts[i] < 0.5).any()}


def _quieter(model: torch.nn.Module, mix: np.ndarray, acts: np.ndarray, settings: AdaptationSettings) -> None:
    """Adapting ``model`` lowers every stem where it is labelled silent."""
    before = _silent_power(model, mix, acts)
    Adapter(model, mix, acts, settings).run()
    after = _silent_power(model, mix, acts)
    assert after.keys() == before.keys() and all(after[i] < before[i] for i in before), (before, after)


def test_loss_falls_and_labelled_silence_gets_quieter():
    result = Adapter(small_model(1), *_song(), _settings("P-L3:D", epochs=4)).run()
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    _quieter(small_model(1), *_song(), _settings("P-L3:D", epochs=4))


def test_dropout_stays_off_while_adapting():
    model = small_model(1)
    adapter = Adapter(model, *_song(), _settings("P-L1:D"))
    assert adapter.split is not None
    state = adapter.split.prefix(adapter.mix[None, :, :4000])
    with torch.no_grad():
        first = adapter.split.suffix(state, 4000)
        second = adapter.split.suffix(state, 4000)
    assert torch.equal(first, second) and not model.training


@pytest.mark.slow  # over a second: CI runs it
def test_a_bag_trains_every_member_and_keeps_the_bag():
    bag = ModelBag([small_model(1), small_model(2)], [[1, 1, 0, 0], [0, 0, 1, 1]])
    before = [{k: v.clone() for k, v in bag.member(i).state_dict().items()} for i in range(2)]
    quiet_before = _silent_power(bag, *_song())
    Adapter(bag, *_song(), _settings("P-L5:D", epochs=3)).run()
    for index in range(2):
        after = bag.member(index).state_dict()
        changed = {k for k in after if not torch.equal(after[k], before[index][k])}
        last = bag.member(index).config.depth - 1
        assert changed and all(k.startswith((f"decoder.{last}.", f"tdecoder.{last}.")) for k in changed), changed
    quiet_after = _silent_power(bag, *_song())
    assert all(quiet_after[i] < quiet_before[i] for i in quiet_before)


@pytest.mark.parametrize("bag", [False, True], ids=["model", "bag"])
def test_checkpoint_round_trip_keeps_demucs_key_names_and_outputs(tmp_path, bag):
    model = ModelBag([small_model(1), small_model(2)]) if bag else small_model(1)
    path = tmp_path / "adapted.th"
    save_checkpoint(path, model, {"strategy": "P-L3:D"})
    loaded = load_model_file(path)
    assert type(loaded.model) is type(model) and loaded.provenance == {"strategy": "P-L3:D"}
    assert set(loaded.model.state_dict()) == set(model.state_dict())
    assert any(key.startswith(("crosstransformer.layers.0.", "members.0.crosstransformer.layers.0."))
               for key in loaded.model.state_dict())
    x = torch.randn(1, 2, 4000)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    content = torch.load(path, weights_only=True)
    assert content["family"] == ("bag" if bag else "htdemucs")


def test_six_sources_adapt_from_guitar_and_piano_labels():
    torch.manual_seed(0)
    model = HTDemucs(HTDemucsConfig(**SMALL_SIZES, segment=Fraction(1, 2), sources=SIX_SOURCES)).eval()
    mix, acts = _song(sources=6)
    acts[4, RATE:] = 0  # guitar rests in the second half
    # Exact borders (guard 0): with the default 0.5 s band, a quarter of these sub-second rests goes untrained
    # and three epochs of a tiny random model did not lower every source's silence (failing since main merged).
    assert sorted(_silent_power(model, mix, acts)) == [0, 3, 4]  # drums, vocals and guitar rest somewhere
    _quieter(model, mix, acts, _settings("P-L4:D", epochs=3, guard=0.0))


# --- the CLI flows ---------------------------------------------------------------------------------------------


@pytest.fixture
def ht_file(tmp_path):
    path = tmp_path / "small-htdemucs.th"
    save_checkpoint(path, small_model(1))
    return path


@pytest.fixture
def song(tmp_path):
    mix, _ = _song(3.0)
    path = tmp_path / "song.wav"
    sf.write(path, mix.T, RATE, subtype="FLOAT")
    labels = tmp_path / "labels.txt"
    labels.write_text("0.7\t3\tvocals\n0\t1.5\tdrums\n0\t3\tbass\n0\t3\tother\n")
    return path, labels


def test_strategies_lists_the_htdemucs_cuts(cli, ht_file):
    result = cli("strategies", "--model", ht_file, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["strategy"]: row for row in json.loads(result.stdout)["strategies"]}
    assert rows["P-L3:D"]["trains"] == "channel down-samplers + both decoders"
    assert rows["P-L1:D"]["trainable_parameters"] > rows["P-L5:D"]["trainable_parameters"] > 0
    table = cli("strategies", "--model", ht_file)
    assert "both encoders always frozen" in " ".join(table.stdout.split())


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_separate_with_labels_and_resplit_on_htdemucs(cli, ht_file, song, tmp_path):
    path, labels = song
    result = cli("separate", path, "--model", ht_file, "--labels", labels, "--strategy", "P-L4:D", "--epochs", "2",
                 "--resplit", "-o", tmp_path / "out", "--json", "--bits", "32")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["adaptation"]["plan"]["settings"]["window"] == 0.5  # the model's segment, not 10 s
    vocals = sf.read(record["stems"]["vocals"])[0]
    # resting where the labels say, after the resplit, beyond the guard band (a quarter of the 0.7 s rest)
    assert np.abs(vocals[: int(0.45 * RATE)]).max() == 0
    plain = cli("separate", path, "--model", ht_file, "--labels", labels, "--strategy", "P-L4:D", "--epochs", "2",
                "-o", tmp_path / "plain", "--json", "--bits", "32")
    assert plain.exit_code == 0, plain.stderr
    stems = sum(sf.read(p)[0] for p in record["stems"].values())
    adapted = sum(sf.read(p)[0] for p in json.loads(plain.stdout)["stems"].values())
    np.testing.assert_allclose(stems, adapted, atol=1e-4)  # what the resting stem held went to the playing ones


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_adapt_then_separate_with_the_adapted_file_equals_one_step(cli, ht_file, song, tmp_path):
    path, labels = song
    settings = ("--strategy", "P-L3:D", "--epochs", "2", "--lr", "1e-3")
    adapted = tmp_path / "song-htd.th"
    assert cli("adapt", path, "--model", ht_file, "--labels", labels, *settings, "-o", adapted).exit_code == 0
    two = cli("separate", path, "--model", adapted, "-o", tmp_path / "two", "--bits", "32", "--json")
    one = cli("separate", path, "--model", ht_file, "--labels", labels, *settings, "--no-resplit", "-o",
              tmp_path / "one", "--bits", "32", "--json")
    assert two.exit_code == one.exit_code == 0, (two.stderr, one.stderr)
    for name, stem in json.loads(one.stdout)["stems"].items():
        assert np.array_equal(sf.read(stem)[0], sf.read(json.loads(two.stdout)["stems"][name])[0]), name
    assert load_model_file(adapted).provenance["strategy"] == "P-L3:D"
