"""The adaptation core: what each strategy trains, prefix caching, losses, warnings and the CPU plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ugosa_cli import planning
from ugosa_cli.adaptation import AdaptationSettings, Adapter, informative_order, window_starts
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.errors import InputError
from ugosa_cli.models import family_of
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.planning import MAX_PASSES, AdaptationRequest, fit_to_budget, mostly_silent, plan_adaptation
from ugosa_cli.strategy import Strategy, count_trainable, freeze_for, strategy_table

from conftest import TINY_CONFIG, tone_mix

PAPER_TP = {1: 8_244_284, 2: 5_586_984, 3: 2_929_684, 4: 406_017, 5: 10_240}
RATE = TINY_CONFIG.samplerate


def _song(seconds: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    mix = tone_mix(seconds, RATE, seed=3).T.copy()
    acts = np.ones((4, mix.shape[1]), np.float32)
    acts[3, : int(1.5 * RATE)] = 0  # vocals rest for the first 1.5 s
    acts[0, int(2.5 * RATE) :] = 0  # drums rest after 2.5 s
    return mix, acts


def _fresh(base: ConvTasNet) -> ConvTasNet:
    model = ConvTasNet(base.config)
    model.load_state_dict(base.state_dict())
    return model.eval()


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_trainable_parameters_of_the_full_tasnet_equal_the_paper(cut):
    model = ConvTasNet(ModelConfig())
    assert count_trainable(model, Strategy.parse(f"P-L{cut}:D")) == PAPER_TP[cut]


def test_strategy_names_parse_case_insensitively_and_bad_ones_are_rejected():
    assert Strategy.parse("p-l2:d").name == "P-L2:D"
    assert not Strategy.parse("b0").trains
    for bad in ("P-L6:D", "X-L1:D", "L2", ""):
        with pytest.raises(InputError, match="unknown strategy"):
            Strategy.parse(bad)


def test_table_lists_b0_and_every_strategy_with_counts(tiny_model):
    rows = {row["strategy"]: row for row in strategy_table(tiny_model)}
    assert rows["B0"]["trainable_parameters"] == 0
    assert len(rows) == 16
    assert rows["P-L1:D"]["trainable_parameters"] > rows["P-L3:D"]["trainable_parameters"] > rows["P-L5:D"]["trainable_parameters"]


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_prefix_then_suffix_equals_the_whole_model(tiny_model, cut):
    split = family_of(tiny_model).split(tiny_model, cut)
    x = torch.randn(2, 2, 3000)
    with torch.no_grad():
        whole = tiny_model(x)
        parts = split.suffix(split.prefix(x), x.shape[-1])
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("strategy", ["P-L1:D", "P-L3:D", "P-L4:D", "P-L5:D", "M-L2:D"])
def test_frozen_parameters_stay_bit_identical_and_trained_ones_move(tiny_model, strategy):
    mix, acts = _song()
    model = _fresh(tiny_model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    freeze_for(model, Strategy.parse(strategy))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    settings = AdaptationSettings(strategy=strategy, epochs=1, lr=1e-3, window=1.0, hop=1.0, seed=0)
    Adapter(model, mix, acts, settings).run()
    after = model.state_dict()
    assert trained and not any(k.startswith("encoder") for k in trained)
    for key, value in after.items():
        if key in trained:
            assert not torch.equal(value, before[key]), f"{key} did not move"
        else:
            assert torch.equal(value, before[key]), f"{key} changed but is frozen"


def test_cached_prefix_gives_the_same_updates_as_recomputing_it(tiny_model):
    mix, acts = _song()
    results = []
    for cache_bytes in (1 << 30, 0):
        model = _fresh(tiny_model)
        settings = AdaptationSettings(epochs=2, lr=1e-3, window=1.0, hop=0.5, seed=1, cache_bytes=cache_bytes)
        Adapter(model, mix, acts, settings).run()
        results.append(model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=0, atol=0)


def _silent_power(model: ConvTasNet, mix: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """(sources,): each stem's mean power where it is labelled silent (NaN where it never is)."""
    with torch.no_grad():
        stems = model(torch.from_numpy(mix)[None])[0].pow(2).mean(dim=1).numpy()
    silent = acts < 0.5
    return np.array([stems[i][silent[i]].mean() if silent[i].any() else np.nan for i in range(len(acts))])


def test_loss_falls_and_labelled_silence_gets_quieter(tiny_model):
    mix, acts = _song()
    settings = AdaptationSettings(strategy="P-L1:D", epochs=6, lr=3e-3, window=1.0, hop=0.5, seed=0)
    model = _fresh(tiny_model)
    before = _silent_power(model, mix, acts)
    result = Adapter(model, mix, acts, settings).run()
    losses = [epoch["loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    after = _silent_power(model, mix, acts)
    assert after[0] < before[0] and after[3] < before[3]  # drums and vocals, the sources labelled silent
    # Their rests (1.5 s) are too short to hold any part out: nothing checks the result, and the report says so.
    assert result.evidence is None and result.decision is not None and not result.decision.checked


def test_same_seed_repeats_exactly_on_cpu(tiny_model):
    mix, acts = _song()
    states = []
    for _ in range(2):
        model = _fresh(tiny_model)
        Adapter(model, mix, acts, AdaptationSettings(epochs=1, lr=1e-3, window=1.0, seed=5)).run()
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_supervised_strategy_needs_references_and_uses_them(tiny_model):
    mix, acts = _song()
    with pytest.raises(InputError, match="S-L2:D needs the true stems"):
        Adapter(_fresh(tiny_model), mix, acts, AdaptationSettings(strategy="S-L2:D"))
    refs = np.stack([mix / 4] * 4)
    result = Adapter(
        _fresh(tiny_model), mix, acts, AdaptationSettings(strategy="S-L2:D", epochs=2, lr=1e-3, window=1.0), references=refs
    ).run()
    assert "sup" in result.history[0]


def test_labels_without_any_silence_are_refused(tiny_model):
    mix, _ = _song()
    with pytest.raises(InputError, match="no source as silent"):
        Adapter(_fresh(tiny_model), mix, np.ones((4, mix.shape[1]), np.float32), AdaptationSettings())


def test_song_shorter_than_a_window_trains_on_the_whole_song(tiny_model):
    mix, acts = _song(2.0)
    adapter = Adapter(_fresh(tiny_model), mix, acts, AdaptationSettings(window=10.0))
    assert adapter.starts == [0] and adapter.window == mix.shape[1]
    assert "shorter than one 10 s window" in adapter.notes[0]


def test_a_source_labelled_silent_for_most_of_the_song_is_warned_about(tiny_model):
    mix, acts = _song()
    frames = mix.shape[1]
    acts[2, : int(0.7 * frames)] = 0  # "other" rests 70 % of the song, then plays
    acts[1] = 0  # bass never plays: silencing it everywhere is what the labels ask
    assert mostly_silent(acts, tiny_model.sources) == {"other": pytest.approx(0.7, abs=1e-3)}

    def warnings(strategy: str, mix: np.ndarray, acts: np.ndarray) -> list[str]:
        loaded = LoadedModel(_fresh(tiny_model), "tiny", "0" * 64)
        request = AdaptationRequest(strategy=Strategy.parse(strategy), epochs=1)
        found = plan_adaptation(loaded, mix, acts, request, torch.device("cpu"), estimate=False).warnings
        return [line for line in found if "labelled silent for" in line]

    found = warnings("P-L5:D", mix, acts)
    assert len(found) == 1 and found[0].startswith("other is labelled silent for 70% of the song")
    # Vocals resting 1.5 s of 4 s and drums 1.5 s are within what the proposed loss handles.
    assert not warnings("P-L5:D", *_song())
    for untouched in ("M-L5:D", "B0"):
        assert not warnings(untouched, mix, acts)


def _plan(tiny_model, acts: np.ndarray, strategy: str | None = None, *, filter_few: bool = True):
    loaded = LoadedModel(_fresh(tiny_model), "tiny", "0" * 64)
    request = AdaptationRequest(strategy=None if strategy is None else Strategy.parse(strategy), epochs=1)
    return plan_adaptation(loaded, _song()[0], acts, request, torch.device("cpu"), estimate=False, filter_few=filter_few)


def test_labels_with_rests_of_half_the_sources_or_fewer_are_applied_to_the_stems_instead_of_adapting(tiny_model):
    """``separate`` (filter_few): rests of one or two of four sources plan no training but the resplit filter, and
    the plan says so and how to adapt anyway; with rests of three sources it adapts."""
    acts = _song()[1]  # vocals and drums rest
    for resting in (("vocals",), ("drums", "vocals")):
        rows = acts.copy()
        rows[[i for i, name in enumerate(tiny_model.sources) if name not in resting]] = 1
        plan = _plan(tiny_model, rows)
        assert plan.resplits and not plan.strategy.trains and plan.steps == 0
        assert plan.plan.startswith(f"not adapting: the labels give rests for {', '.join(resting)} only")
        assert "give --strategy P-L2:D to adapt anyway" in plan.plan and not plan.warnings
        assert plan.to_dict()["resplits"] is True
    rows = acts.copy()
    rows[2, -RATE:] = 0  # "other" rests too: three of four
    plan = _plan(tiny_model, rows)
    assert plan.strategy.name == "P-L2:D" and not plan.resplits and plan.steps > 0
    plan = _plan(tiny_model, np.ones_like(acts))  # no rest at all: only re-split, with a warning
    assert plan.resplits and plan.plan == "not adapting: no labelled rest"
    assert len(plan.warnings) == 1 and plan.warnings[0].startswith("the labels mark no source as silent anywhere")
    for strategy, filter_few in (("P-L5:D", True), (None, False)):  # asked to adapt (or `adapt`): refused
        with pytest.raises(InputError, match="no source as silent"):
            _plan(tiny_model, np.ones_like(acts), strategy, filter_few=filter_few)


def test_adapting_anyway_from_rests_of_few_sources_is_warned_about(tiny_model):
    """An explicit strategy, or ``adapt`` (no filter_few), adapts from rests of few sources, with a warning that
    says what the others get and what gained more."""
    acts = _song()[1]
    acts[0] = 1  # only the vocals rest
    for plan in (_plan(tiny_model, acts, "P-L5:D"), _plan(tiny_model, acts, filter_few=False)):
        assert plan.strategy.trains and not plan.resplits
        assert len(plan.warnings) == 1
        assert plan.warnings[0].startswith("rests labelled for vocals only (drums, bass, other: no labelled rest)")
        assert "labels draft" in plan.warnings[0] and "without --strategy" in plan.warnings[0]
    three = _song()[1]
    three[2, -RATE:] = 0  # drums, other and vocals rest
    assert not _plan(tiny_model, three, "P-L5:D").warnings
    assert not _plan(tiny_model, acts, "M-L5:D").warnings  # the proposed loss only


def test_b0_trains_nothing(tiny_model):
    mix, acts = _song()
    model = _fresh(tiny_model)
    result = Adapter(model, mix, acts, AdaptationSettings(strategy="B0")).run()
    assert result.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tiny_model.state_dict().values()))


def test_windows_cover_the_tail():
    assert window_starts(25, 10, 10) == [0, 10, 15]
    assert window_starts(5, 10, 1) == [0]


def test_informative_windows_come_first():
    acts = np.ones((2, 30), np.float32)
    acts[0, 20:30] = 0
    assert informative_order(acts, [0, 10, 20], 10)[0] == 20


def test_cpu_plan_fits_the_budget():
    base = AdaptationSettings(window=4.0)
    big = 1e12  # operations of one window's forward: a network where the budget is about one more separation
    planned, summary = fit_to_budget(base, frames=180 * 44100, samplerate=44100, step_cost=2.0, prefix_cost=0.5,
                                     window_flop=big)
    # 45 windows; separation 45 x 4/3 = 60 forwards. A quarter of it (15) buys windows at 0.5 + 2 x 0.5 each: 10
    # windows; the 45 forwards left buy 18 steps of 2, each carrying a tenth of a check of the 10 windows (0.5).
    assert planned.hop == planned.window == 4.0 and planned.max_windows == 10 and planned.steps == 18
    assert "18 steps over 10" in summary and "--protocol paper" in summary
    unchecked, _ = fit_to_budget(base, frames=180 * 44100, samplerate=44100, step_cost=2.0, prefix_cost=0.5,
                                 window_flop=big, checks=False)
    assert unchecked.steps == 22 and unchecked.max_windows == 30  # no checks: windows at 0.5 each, steps at 2
    short, _ = fit_to_budget(base, frames=20 * 44100, samplerate=44100, step_cost=2.0, prefix_cost=0.5,
                             window_flop=big)
    assert short.max_windows == 1 and short.steps == 2  # a short song of a big network: little work to spend
    small, _ = fit_to_budget(base, frames=20 * 44100, samplerate=44100, step_cost=2.0, prefix_cost=0.5,
                             window_flop=1e9)
    # A small network gets the floor of work: every window, and at most twenty passes over them.
    assert small.max_windows is None and small.steps == MAX_PASSES * 5


def test_recomputing_activations_gives_the_same_updates(tiny_model):
    mix, acts = _song()
    states = []
    for recompute in (False, True):
        model = _fresh(tiny_model)
        settings = AdaptationSettings(strategy="P-L1:D", epochs=1, lr=1e-3, window=1.0, seed=2)
        adapter = Adapter(model, mix, acts, settings)
        adapter.split.recompute = recompute
        adapter.run()
        states.append(model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=1e-7)


@pytest.mark.parametrize("available", [1 << 30, 1 << 40])
def test_full_size_windows_are_recomputed_where_memory_is_short(monkeypatch, available):
    """The plan counts recomputed activations on every machine; a run keeps them where half the free memory holds
    them (the same updates, sooner)."""
    import ugosa_cli.adaptation as adaptation

    real = adaptation.os.sysconf
    monkeypatch.setattr(adaptation.os, "sysconf", lambda name: available // 4096 if name == "SC_AVPHYS_PAGES" else real(name))
    mix = np.zeros((2, 441000), np.float32)
    acts = np.ones((4, 441000), np.float32)
    acts[0, :1000] = 0
    adapter = Adapter(ConvTasNet(ModelConfig()), mix, acts, AdaptationSettings(strategy="P-L2:D", window=10.0))
    assert adapter.plans_recompute
    short = available < adapter.activation_estimate() * 2
    assert adapter.split.recompute == short
    assert any("recomputing activations" in note for note in adapter.notes) == short


def test_the_guard_band_keeps_the_silence_term_away_from_each_border():
    from ugosa_cli.adaptation import guard_borders

    acts = np.ones((4, 100), np.float32)
    acts[0, 40:60] = 0  # a rest in the middle: both ends are borders
    acts[1, :30] = 0  # a rest from the song's start: only its end is a border
    acts[2, 50:58] = 0  # a short rest: the guard takes at most a quarter of it at each end
    acts[3] = 0  # silent throughout: no border at all
    guarded = guard_borders(acts, 5)
    assert np.flatnonzero(guarded[0] == 0).tolist() == list(range(45, 55))
    assert np.flatnonzero(guarded[1] == 0).tolist() == list(range(25))
    assert np.flatnonzero(guarded[2] == 0).tolist() == list(range(52, 56))
    assert not guarded[3].any()
    np.testing.assert_array_equal(guard_borders(acts, 0), acts)


def test_adaptation_applies_the_silence_term_only_outside_the_guard_band(tiny_model):
    mix, acts = _song()
    guarded = Adapter(_fresh(tiny_model), mix, acts, AdaptationSettings(window=1.0, guard=0.25)).activations
    exact = Adapter(_fresh(tiny_model), mix, acts, AdaptationSettings(window=1.0, guard=0.0)).activations
    border = int(1.5 * RATE)  # the vocals start playing here
    assert exact[3, border - 100] == 0 and guarded[3, border - 100] == 1
    assert guarded[3, border - int(0.3 * RATE)] == 0 and guarded[3, : RATE // 2].max() == 0  # the song's start is no border
    with pytest.raises(Exception, match="guard"):
        AdaptationSettings(guard=-1.0)


def test_guard_follows_the_settings_rule(tiny_model):
    from ugosa_cli.adaptation import DEFAULT_GUARD
    from ugosa_cli.planning import resolve_settings

    assert resolve_settings(AdaptationRequest(), {}, cuda=False).guard == DEFAULT_GUARD
    assert resolve_settings(AdaptationRequest(), {"guard": 0.2}, cuda=False).guard == 0.2
    assert resolve_settings(AdaptationRequest(guard=0.0), {"guard": 0.2}, cuda=False).guard == 0.0


def test_the_plan_estimates_more_memory_for_strategies_that_train_more(tiny_model):
    mix, acts = _song()

    def memory(strategy: str) -> int:
        loaded = LoadedModel(_fresh(tiny_model), "tiny", "0" * 64)
        request = AdaptationRequest(strategy=Strategy.parse(strategy), epochs=1, window=1.0)
        plan = plan_adaptation(loaded, mix, acts, request, torch.device("cpu"))
        assert plan.to_dict()["estimated_memory_bytes"] == plan.estimated_memory_bytes
        return plan.estimated_memory_bytes

    weights = sum(p.numel() for p in tiny_model.parameters()) * 4
    assert memory("P-L1:D") > memory("P-L4:D") > memory("P-L5:D") > weights


def test_the_anchor_term_measures_only_the_sources_without_labelled_silence():
    from ugosa_cli.adaptation import anchor_loss

    pretrained = torch.zeros(1, 4, 2, 10)
    estimates = pretrained.clone()
    estimates[:, 3] = 1.0  # only the vocals moved
    assert anchor_loss(estimates, pretrained, torch.tensor([1.0, 1.0, 1.0, 0.0])).item() == 0
    assert anchor_loss(estimates, pretrained, torch.tensor([0.0, 0.0, 0.0, 1.0])).item() == pytest.approx(0.25)


@pytest.mark.slow  # over a second: CI runs it
def test_the_anchor_keeps_unlabelled_sources_near_the_pretrained_stems(tiny_model):
    """Only the vocals labelled: without the anchor the three free sources drift; with it they stay near what
    the pretrained model made of them, and the vocals' labelled silence still gets quieter."""
    mix, acts = _song()
    acts[:3] = 1
    pretrained = _fresh(tiny_model)
    wav = torch.from_numpy(mix)[None]
    with torch.no_grad():
        before = pretrained(wav)[0, :3]
    drift = {}
    for anchor in (0.0, 3.0):
        settings = AdaptationSettings(strategy="P-L1:D", epochs=6, lr=3e-3, window=1.0, hop=0.5, gamma=10.0,
                                      anchor=anchor, seed=0)
        adapter = Adapter(_fresh(tiny_model), mix, acts, settings)
        assert adapter.anchored == ("drums", "bass", "other")
        assert any("keeping drums, bass, other" in note for note in adapter.notes) == (anchor > 0)
        result = adapter.run()
        with torch.no_grad():
            drift[anchor] = float((result.model(wav)[0, :3] - before).abs().mean())
        assert result.history[-1]["act"] < 0.5 * result.history[0]["act"]  # the vocals' rest gets quieter
        assert ("anchor" in result.history[0]) == (anchor > 0)
    assert drift[3.0] < 0.5 * drift[0.0]


def test_anchor_follows_the_settings_rule_and_rejects_bad_values():
    from ugosa_cli.adaptation import DEFAULT_ANCHOR
    from ugosa_cli.planning import resolve_settings

    assert resolve_settings(AdaptationRequest(), {}, cuda=False).anchor == DEFAULT_ANCHOR
    assert resolve_settings(AdaptationRequest(), {"anchor": 0.7}, cuda=False).anchor == 0.7
    assert resolve_settings(AdaptationRequest(anchor=0.0), {"anchor": 0.7}, cuda=False).anchor == 0.0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(Exception, match="anchor"):
            AdaptationSettings(anchor=bad)


def test_the_cpu_plan_counts_the_anchors_extra_forward(tiny_model, monkeypatch):
    """Partial labels on a CPU: the anchor's target costs a forward of the trained part per step, so the plan
    fits fewer steps into the same budget; with every source labelled no anchor applies and nothing changes."""
    rate = tiny_model.samplerate
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 60 * rate))).astype(np.float32)
    acts = np.ones((4, mix.shape[1]), np.float32)
    acts[3, : 10 * rate] = 0  # only the vocals have a labelled rest

    def steps(anchor: float, acts: np.ndarray) -> int:
        loaded = LoadedModel(_fresh(tiny_model), "tiny", "0" * 64)
        request = AdaptationRequest(strategy=Strategy.parse("P-L1:D"), anchor=anchor)
        return plan_adaptation(loaded, mix, acts, request, torch.device("cpu"), estimate=False).steps

    monkeypatch.setattr(planning, "MIN_BUDGET_FLOP", 0.0)  # the tiny model would get the floor of work either way
    assert steps(0.3, acts) < steps(0.0, acts)
    every = acts.copy()
    every[:3, -10 * rate :] = 0  # every source rests somewhere: nothing to anchor
    assert steps(0.3, every) == steps(0.0, every)
