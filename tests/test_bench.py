"""`ugosa bench` end to end on a MUSDB-format folder of synthesized songs, resume, and the pieces it is made of.

The songs are mono so that BSSEval's 512-tap filters stay cheap (a stereo 4-stem track costs 8x more to
score); the model is stereo, so mono tracks also exercise the channel conversion both ways.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from ugosa_cli import bench, pipeline
from ugosa_cli.adaptation import Adapter
from ugosa_cli.checkpoint import load_model_file, save_checkpoint
from ugosa_cli.demo.synth import generate_song, write_song
from ugosa_cli.errors import InputError
from ugosa_cli.metrics import bss_eval_v4
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig
from ugosa_cli.strategy import B0, Loss, Strategy, count_trainable

from conftest import TINY_CONFIG

RATE = 44100
TRACKS = ("Beta Song", "Alpha Song", "Gamma Song")  # sorted: Alpha, Beta, Gamma
FAST = ("--device", "cpu", "--epochs", "1", "--window", "1", "--lr", "1e-3", "--eval-win", "1", "--eval-hop", "1")


@pytest.fixture(scope="module")
def musdb(tmp_path_factory):
    root = tmp_path_factory.mktemp("musdb")
    for seed, name in enumerate(TRACKS):
        song = generate_song(seed + 1, duration=3.0, samplerate=RATE, channels=1)
        write_song(song, root / "test" / name)
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny44k.th"
    save_checkpoint(path, ConvTasNet(ModelConfig(N=16, L=20, B=8, H=16, X=2, R=4)))
    return path


class Calls:
    """Counts calls of a library function; optionally interrupts the ``fail_at``-th one."""

    def __init__(self, monkeypatch, name: str, fail_at: int | None = None) -> None:
        self.count = 0
        self.fail_at = fail_at
        module = pipeline if name == "separate_array" else bench  # bench separates through the pipeline
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            self.count += 1
            if self.count == self.fail_at:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)


@pytest.mark.slow
def test_bench_runs_end_to_end_and_resume_recomputes_nothing(cli, musdb, model_file, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    args = ("bench", "--musdb", musdb, "--tracks", "2", "--strategies", "B0,P-L3:D", "-o", out,
            "--model", model_file, *FAST)
    # First run: interrupted while separating the first job of the second track.
    separations = Calls(monkeypatch, "separate_array", fail_at=3)
    variants = Calls(monkeypatch, "silence_quarters")
    interrupted = cli(*args, "--json")
    assert interrupted.exit_code == 130 and "interrupted" in interrupted.stderr
    assert "estimated time on cpu" in interrupted.stderr
    stored = sorted(p.relative_to(out).as_posix() for p in (out / "results").rglob("*.json"))
    assert stored == ["results/Alpha Song/B0.json", "results/Alpha Song/P-L3-D.json"]
    assert not list(out.rglob("*.partial"))
    assert variants.count == 2  # the second track was prepared before the interruption

    # Resume: only the jobs of the second track run; its variant and labels come from the cache.
    separations = Calls(monkeypatch, "separate_array")
    variants = Calls(monkeypatch, "silence_quarters")
    labels = Calls(monkeypatch, "oracle_labels")
    scorings = Calls(monkeypatch, "evaluate_stems")
    trainings = 0
    original_run = Adapter.run

    def counted_run(self, *a, **kw):
        nonlocal trainings
        trainings += 1
        return original_run(self, *a, **kw)

    monkeypatch.setattr(Adapter, "run", counted_run)
    resumed = cli(*args, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert "resuming: 2 of 4" in resumed.stderr
    assert (separations.count, scorings.count, trainings) == (2, 2, 1)
    assert (variants.count, labels.count) == (0, 0)
    document = json.loads(resumed.stdout)
    assert document["tracks"] == ["Alpha Song", "Beta Song"]
    assert document["sources"] == ["other", "bass", "drums", "vocals"]
    rows = {row["strategy"]: row for row in document["rows"]}
    assert list(rows) == ["B0", "P-L3:D"]
    assert rows["B0"]["trainable_parameters"] == 0
    assert rows["P-L3:D"]["trainable_parameters"] == count_trainable(load_model_file(model_file).model, Strategy(Loss.PROPOSED, 3))
    for row in rows.values():
        assert row["tracks"] == 2
        for source in document["sources"]:
            cell = row["sources"][source]
            assert cell["scored_tracks"] <= 2 and (cell["SDR"] is None) == (cell["scored_tracks"] == 0)
    assert any(row["sources"][s]["SDR"] is not None for row in rows.values() for s in document["sources"])
    assert json.loads((out / "summary.json").read_text())["rows"] == document["rows"]

    # A stored result records what made it.
    result = json.loads((out / "results" / "Beta Song" / "P-L3-D.json").read_text())
    assert result["settings"]["training"]["epochs"] == 1 and result["settings"]["win"] == 1.0
    assert result["adaptation"]["steps"] == 3 and result["variant"]["variant"] == "ugosa"
    baseline = json.loads((out / "results" / "Beta Song" / "B0.json").read_text())
    mdx = [{s: v["MDX_SDR"] for s, v in r["scores"]["sources"].items()} for r in (result, baseline)]
    assert mdx[0] != mdx[1]  # the adapted model separated, not the pretrained one

    # Everything stored: a third run only prints the table.
    separations = Calls(monkeypatch, "separate_array")
    again = cli(*args, "--resume", "--markdown")
    assert again.exit_code == 0 and separations.count == 0
    assert "| strategy | #TP | other | bass | drums | vocals | PES | EPS |" in again.stdout
    assert f"| P-L3:D | {rows['P-L3:D']['trainable_parameters']:,} |" in again.stdout


@pytest.mark.slow  # among the slowest: CI runs it
def test_stored_results_are_not_overwritten_or_mixed_with_other_settings(cli, musdb, model_file, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    args = ("bench", "--musdb", musdb, "--names", "Gamma Song", "--strategies", "B0,P-L5:D", "-o", out,
            "--model", model_file, "--device", "cpu", "--window", "1", "--lr", "1e-3", "--eval-hop", "1")
    Calls(monkeypatch, "separate_array", fail_at=2)  # B0 is stored, P-L5:D interrupted
    assert cli(*args, "--epochs", "1", "--eval-win", "1").exit_code == 130
    fresh = cli(*args, "--epochs", "1", "--eval-win", "1")
    assert fresh.exit_code == 2 and "add --resume" in fresh.stderr
    changed = cli(*args, "--epochs", "1", "--eval-win", "1.5", "--resume")
    assert changed.exit_code == 2 and "win=1.0 (now 1.5)" in changed.stderr
    # B0 trains nothing, so its stored result fits other training settings; only P-L5:D runs.
    separations = Calls(monkeypatch, "separate_array")
    other = cli(*args, "--epochs", "2", "--eval-win", "1", "--resume")
    assert other.exit_code == 0, other.stderr
    assert separations.count == 1


@pytest.mark.slow
def test_resplit_scores_each_job_again_after_the_label_filter(cli, musdb, model_file, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    args = ("bench", "--musdb", musdb, "--names", "Gamma Song", "--strategies", "B0,P-L5:D", "-o", out,
            "--model", model_file, *FAST)
    plain = cli(*args, "--json")
    assert plain.exit_code == 0, plain.stderr
    refused = cli(*args, "--resplit", "--resume")
    assert refused.exit_code == 2 and "resplit=None (now True)" in refused.stderr
    separations = Calls(monkeypatch, "separate_array")
    result = cli("bench", "--musdb", musdb, "--names", "Gamma Song", "--strategies", "B0,P-L5:D", "-o",
                 tmp_path / "resplit", "--model", model_file, *FAST, "--resplit", "--json")
    assert result.exit_code == 0, result.stderr
    assert separations.count == 3  # B0; P-L5:D, and the pretrained model again to guide its resplit
    document = json.loads(result.stdout)
    assert document["settings"]["resplit"] is True
    rows = {row["strategy"]: row for row in document["rows"]}
    assert list(rows) == ["B0", "B0+resplit", "P-L5:D", "P-L5:D+resplit"]
    before = {row["strategy"]: row for row in json.loads(plain.stdout)["rows"]}
    assert rows["B0"]["sources"] == before["B0"]["sources"]  # the plain rows are unchanged
    stored = json.loads((tmp_path / "resplit" / "results" / "Gamma Song" / "P-L5-D.json").read_text())
    mdx = {key: [stored[key]["sources"][s]["MDX_SDR"] for s in document["sources"]] for key in ("scores", "resplit_scores")}
    assert mdx["scores"] != mdx["resplit_scores"]
    assert "| B0+resplit |" in cli("bench", "--musdb", musdb, "--names", "Gamma Song", "--strategies", "B0,P-L5:D",
                                   "-o", tmp_path / "resplit", "--model", model_file, *FAST, "--resplit", "--resume",
                                   "--markdown").stdout


@pytest.mark.slow  # over a second: CI runs it
def test_as_is_uses_the_tracks_unchanged(cli, musdb, model_file, tmp_path):
    out = tmp_path / "bench"
    result = cli("bench", "--musdb", musdb / "test", "--tracks", "1", "--start", "2", "--strategies", "B0", "--as-is",
                 "--frame-rule", "per-source", "-o", out, "--model", model_file, *FAST, "--csv")
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header == "strategy,trainable_parameters,tracks,SDR_other,SDR_bass,SDR_drums,SDR_vocals,PES,EPS"
    assert row.startswith("B0,0,1,")
    folder = out / "tracks" / "as-is" / "Gamma Song"
    assert sorted(p.name for p in folder.iterdir()) == ["labels.json", "variant.json"]  # no audio copies
    stored = json.loads((out / "results" / "Gamma Song" / "B0.json").read_text())
    assert stored["scores"]["settings"]["frame_rule"] == "per-source"


def test_bad_inputs_are_refused_with_one_line(cli, musdb, model_file, tmp_path):
    base = ("bench", "-o", tmp_path / "o", "--model", model_file, "--device", "cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = cli(*base, "--musdb", empty)
    assert missing.exit_code == 2 and "no track folders with mixture.wav" in missing.stderr
    unknown = cli(*base, "--musdb", musdb, "--strategies", "B0,Q-L9")
    assert unknown.exit_code == 2 and "unknown strategy" in unknown.stderr
    formats = cli(*base, "--musdb", musdb, "--json", "--csv")
    assert formats.exit_code == 2 and "choose one output format" in formats.stderr


# --- the pieces --------------------------------------------------------------------------------------------


def test_tracks_are_found_under_the_root_or_its_test_folder_in_name_order(musdb):
    names = [t.name for t in bench.find_tracks(musdb)]
    assert names == sorted(TRACKS) == [t.name for t in bench.find_tracks(musdb / "test")]
    tracks = bench.find_tracks(musdb)
    assert [t.name for t in bench.select_tracks(tracks, count=2, start=1)] == ["Beta Song", "Gamma Song"]
    assert [t.name for t in bench.select_tracks(tracks, count=None, names=["Gamma Song"])] == ["Gamma Song"]
    with pytest.raises(InputError, match="no track named"):
        bench.select_tracks(tracks, count=None, names=["Nope"])


def test_default_strategies_are_the_papers_for_the_models_depth(tiny_model):
    names = [s.name for s in bench.strategies_for(tiny_model, None)]
    assert names == ["P-L1:D", "P-L2:D", "P-L3:D", "P-L4:D", "P-L5:D", "B0"]
    shallow = ConvTasNet(dataclasses.replace(TINY_CONFIG, R=2))
    assert [s.name for s in bench.strategies_for(shallow, None)] == ["P-L1:D", "P-L4:D", "P-L5:D", "B0"]
    with pytest.raises(InputError, match="L2 needs a model with more than 2 repeats"):
        bench.strategies_for(shallow, ["P-L2:D"])
    with pytest.raises(InputError, match="listed twice"):
        bench.strategies_for(tiny_model, ["B0", "b0"])


def test_variant_order_is_a_seeded_permutation_per_track():
    order = bench.variant_order("Song", 0)
    assert sorted(order) == sorted(bench.MUSDB_SOURCES)
    assert order == bench.variant_order("Song", 0)
    orders = {tuple(bench.variant_order(f"Song {i}", seed)) for i in range(8) for seed in (0, 1)}
    assert len(orders) > 4


def test_each_source_is_silenced_in_its_quarter_with_smooth_borders():
    frames = 2 * RATE
    rng = np.random.default_rng(0)
    stems = {name: rng.uniform(-0.5, 0.5, (2, frames)).astype(np.float32) for name in bench.MUSDB_SOURCES}
    stems["bass"] = np.full((2, frames), 0.5, np.float32)  # a constant shows the fade's shape
    order = ["vocals", "bass", "drums", "other"]
    out = bench.silence_quarters(stems, order)
    quarter = frames // 4
    margin = bench.VARIANT_FFT  # the fade spreads over one window at each border
    for index, name in enumerate(order):
        start, stop = index * quarter, (index + 1) * quarter if index < 3 else frames
        assert not out[name][:, start + margin : stop - margin].any(), name  # exactly zero inside its quarter
        outside = np.ones(frames, bool)
        outside[max(0, start - margin) : stop + margin] = False
        np.testing.assert_allclose(out[name][:, outside], stems[name][:, outside], atol=1e-5)  # untouched elsewhere
    bass = out["bass"][0]
    assert np.abs(np.diff(bass)).max() < 0.005  # no step: a hard cut would jump by 0.5
    fading = np.flatnonzero((bass > 0.01) & (bass < 0.49))
    assert 500 < fading.size < 2 * margin  # each of the two borders fades over hundreds of samples


def test_prepared_variant_mixture_is_the_sum_of_the_modified_stems(musdb, model_file, tmp_path):
    loaded = load_model_file(model_file)
    tracks = bench.find_tracks(musdb)[:1]
    run = bench.Bench(loaded, tracks, [B0], bench.BenchSettings(), tmp_path / "b")
    prepared = run.prepare(tracks[0])
    np.testing.assert_allclose(prepared.mixture, sum(prepared.stems.values()), atol=1e-6)
    # The oracle labels are those of the modified stems, not of the original ones.
    sources = loaded.model.sources
    assert prepared.labels == bench.oracle_labels(prepared.stems, RATE, sources)
    original = {name: sf.read(tracks[0].folder / f"{name}.wav", always_2d=True)[0].T for name in sources}
    first = prepared.variant["silenced_in_quarter"][0]
    assert prepared.labels.regions[first] != bench.oracle_labels(original, RATE, sources).regions[first]
    folder = tmp_path / "b" / "tracks" / "ugosa-seed0" / tracks[0].name
    on_disk, _ = sf.read(folder / "mixture.wav", always_2d=True)
    np.testing.assert_array_equal(on_disk.T, prepared.mixture)
    assert run.prepare(tracks[0]).labels == prepared.labels  # read back from the cache unchanged


def _result(strategy: str, sdr: dict, pes: float | None = None, eps: float | None = None, tp: int = 7) -> dict:
    sources = {s: {"SDR": v, "PES": pes, "EPS": eps} for s, v in sdr.items()}
    return {"strategy": strategy, "trainable_parameters": tp, "scores": {"sources": sources}}


def test_aggregate_takes_medians_over_tracks_and_leaves_unscored_tracks_out():
    results = [
        _result("P-L1:D", {"bass": 1.0, "vocals": None}, pes=-40.0),
        _result("P-L1:D", {"bass": 3.0, "vocals": 5.0}, pes=-20.0, eps=-10.0),
        _result("P-L1:D", {"bass": 8.0, "vocals": None}),
        _result("B0", {"bass": 2.0, "vocals": 2.0}, tp=0),
    ]
    rows = bench.aggregate(results, ["P-L1:D", "B0"], ["bass", "vocals"])
    first, baseline = rows
    assert first["tracks"] == 3 and first["trainable_parameters"] == 7
    assert first["sources"]["bass"] == {"SDR": 3.0, "scored_tracks": 3, "PES": -30.0, "EPS": -10.0}
    assert first["sources"]["vocals"]["SDR"] == 5.0 and first["sources"]["vocals"]["scored_tracks"] == 1
    assert first["PES"] == -30.0 and first["EPS"] == -10.0  # over tracks and sources
    assert baseline["sources"]["bass"]["SDR"] == 2.0 and baseline["PES"] is None


def test_trainable_parameters_print_as_in_the_paper():
    assert [bench.format_parameters(n) for n in (8_244_284, 5_586_984, 406_017, 10_240, 0, 640)] == [
        "8.2M", "5.6M", "0.4M", "0.01M", "-", "640"
    ]


def test_per_source_frame_rule_scores_the_sources_that_have_sound():
    rng = np.random.default_rng(3)
    rate = 4000
    refs = rng.standard_normal((2, 1, 3 * rate))
    refs[1, :, rate : 2 * rate] = 0.0  # the second source rests in the second frame
    ests = 0.9 * refs + 0.1 * rng.standard_normal(refs.shape)
    ests[1, :, rate : 2 * rate] = 0.0
    museval = bss_eval_v4(refs, ests, rate, rate, filter_length=32)
    per_source = bss_eval_v4(refs, ests, rate, rate, filter_length=32, frame_rule="per-source")
    assert np.isnan(museval["SDR"][:, 1]).all()
    assert math.isfinite(per_source["SDR"][0, 1]) and math.isnan(per_source["SDR"][1, 1])
    for metric, values in museval.items():  # where nothing is silent the two rules agree
        np.testing.assert_allclose(per_source[metric][:, [0, 2]], values[:, [0, 2]])
