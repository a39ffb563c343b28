"""Guidance as people give it: adaptation's gain with rough, drafted and partial labels.

    python benchmarks/label_robustness.py                    # 8 held-out songs x 16 s, every kind of guidance
    python benchmarks/label_robustness.py --songs 1 --duration 4 --epochs 1 --kinds exact,jitter0.5   # smoke
    python benchmarks/label_robustness.py --first-seed 2000500 --guards 0,0.25,0.5,1 --kinds exact,jitter0.5,jitter1
    python benchmarks/label_robustness.py --generator other --first-seed 200 --kinds exact \\
        --resplit-variants mix/mean,stems/mean,stems/adapted,gate
    python benchmarks/label_robustness.py --first-seed 2000500 --songs 3 --kinds vocals,allbutvocals --anchors 0,0.3
    python benchmarks/label_robustness.py --first-seed 2000500 --songs 3 --kinds draft,draft:own=-15:min_gap=2

Songs: by default held-out songs of the demo model (seeds ``3_000_000 + k``, as ``adaptation_gain.py``; timbre
+-2 alternating; each source resting in one quarter). ``--generator other`` plays songs of the independent
generator in ``benchmarks/other_songs.py`` (seeds as given), ``--generator hybrid`` the drums and bass of the
built-in synthesizer (at ``--timbres``) under the other generator's keys/guitar and voice.

Kinds of guidance (``--kinds``), each the labels a person might give for the song:

- ``exact``: every source's true regions;
- ``jitter0.25``, ``jitter0.5``, ``jitter1``: every border (not the song's start or end) moved at random by up
  to 0.25, 0.5 or 1 s either way, independently;
- ``draft``: what ``ugosa labels draft`` writes (:func:`ugosa_cli.draft.draft_labels` on the pretrained stems);
  ``draft:SETTING=VALUE[:...]``: the same with other :class:`ugosa_cli.draft.DraftSettings` (``own``, ``share``,
  ``min_gap``, ``presence``, ...);
- ``vocals``: only the vocals' true regions; the other sources unconstrained;
- ``novocals``: only ``no vocals`` regions, drawn where a person is sure: each of the vocals' rests with its
  ends moved inwards by up to 1 s (the song's start and end kept); the other sources unconstrained;
- ``allbutvocals``: every source's true regions but the vocals', which stay unconstrained;
- ``only:NAME+NAME``: the true regions of the named sources only (``only:vocals`` is ``vocals``);
- ``rest0.5``, ``rest1``, ``rest2``: every source labelled playing except 0.5, 1 or 2 s in the middle of each
  of its true rests (how long a labelled rest must be to help).

Each song is separated once by the pretrained model (B0); for each kind (and each ``--guards`` and
``--anchors`` value, rows ``KIND@GUARD~ANCHOR``) the
model is reset, adapted with the kind's labels (the model's recommended settings unless overridden) and
the song separated again, through :class:`ugosa_cli.pipeline.GuidedSeparator` as ``ugosa separate
--labels`` runs it; then its stems are post-filtered with the same labels (``--resplit-variants``: the
resplit's mode and guide, ``mode/guide``, or ``gate``, each optionally ``@SEC``, the filter's guard band
around each border; by default what ``--resplit`` does). The rows adapt even where ``ugosa separate
--labels`` would not (labels with rests of half the sources or fewer, :func:`ugosa_cli.planning.too_few_rests`,
are applied to the pretrained stems instead); the column ``separate`` is what the command writes (with
``default`` among the variants). Scores against
the true stems: whole-song SDR (MDX definition) per source, and the leakage (power of a stem where its
instrument truly rests). Printed per kind: the mean over songs of the gain over B0 (mean over sources),
the worst source (the lowest mean gain of a source), the leakage drop, and per source gains.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adaptation_gain import BENCHMARK_SEED_BASE

from ugosa_cli import hub
from ugosa_cli.demo.runner import HELD_OUT_TIMBRE, leakage_db, song_labels
from ugosa_cli.demo.synth import REST_LAYOUTS, SOURCES, Song, generate_song
from ugosa_cli.draft import DraftSettings, draft_labels
from ugosa_cli.errors import InputError
from ugosa_cli.labels import Labels, activation_matrix, labels_from_regions, parse_labels
from ugosa_cli.metrics import mdx_sdr
from ugosa_cli.pipeline import RESPLIT_RULE, GuidedSeparator
from ugosa_cli.planning import AdaptationRequest, recommendation, resolve_settings, resting_sources, too_few_rests

KINDS = ("exact", "jitter0.25", "jitter0.5", "jitter1", "draft", "vocals", "novocals", "allbutvocals", "rest0.5", "rest1",
         "rest2")
GENERATORS = ("synth", "other", "hybrid")
TARGET_KEPT = 0.7  # share of the exact-label gain kept with borders off by up to 0.5 s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="registry name or checkpoint file (default: demo)")
    parser.add_argument("--generator", default="synth", choices=GENERATORS, help="which songs (default: synth)")
    parser.add_argument("--songs", type=int, default=8, help="number of songs")
    parser.add_argument("--first-seed", type=int, default=BENCHMARK_SEED_BASE, help="seed of the first song")
    parser.add_argument("--duration", type=float, default=16.0, help="seconds per song")
    parser.add_argument("--rests", default="quarters", choices=REST_LAYOUTS,
                        help="where the sources rest: one quarter each (the paper's experiment; default) or sections "
                             "drawn at random (some where every source plays)")
    parser.add_argument("--timbres", default=f"{HELD_OUT_TIMBRE:g},{-HELD_OUT_TIMBRE:g}",
                        help="timbre shifts of the built-in synthesizer, cycled over songs")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--guards", default=None,
                        help="comma-separated guard bands (s) to adapt with, each a row (default: the setting's own)")
    parser.add_argument("--anchors", default=None,
                        help="comma-separated anchor weights to adapt with, each a row (default: the setting's own)")
    parser.add_argument("--resplit-variants", default="default",
                        help="post-filters to score, comma-separated: mode/guide (mix/mean, stems/adapted, ...), gate, "
                             "or default (what separate --labels does), each optionally @SEC (the filter's guard band)")
    parser.add_argument("--epochs", type=int, default=None, help="override the model's recommended epochs")
    parser.add_argument("--gamma", type=float, default=None, help="override the recommended silence weight")
    parser.add_argument("--jitter-seed", type=int, default=0, help="seed of the jittered borders")
    parser.add_argument("--activity-only", action="store_true",
                        help="only compare each kind's labels with the true activity (no adaptation): the draft's "
                             "precision and recall")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write every score to this file")
    return parser.parse_args(argv)


# --- songs -----------------------------------------------------------------------------------------------


def make_song(generator: str, seed: int, duration: float, timbre: float, rests: str = "quarters") -> Song:
    if generator == "synth":
        return generate_song(seed, duration=duration, timbre=timbre, rests=rests)
    import other_songs

    other = other_songs.generate(seed, duration=duration, rests=rests)
    if generator == "other":
        return other
    synth = generate_song(seed, duration=duration, timbre=timbre, rests=rests)
    stems = {name: (synth if name in ("drums", "bass") else other).stems[name] for name in SOURCES}
    regions = {name: (synth if name in ("drums", "bass") else other).regions[name] for name in SOURCES}
    peak = max(float(np.abs(sum(stems.values())).max()), 1e-9)
    stems = {name: (stem * min(1.0, 0.89 / peak)).astype(np.float32) for name, stem in stems.items()}
    return Song(stems=stems, samplerate=synth.samplerate, regions=regions, tempo=synth.tempo, key=synth.key,
                seed=seed, timbre=timbre, rests=rests)


# --- guidance --------------------------------------------------------------------------------------------


def jittered(song: Song, reach: float, rng: np.random.Generator) -> Labels:
    """The true regions with every border inside the song moved by up to ``reach`` seconds either way."""
    duration = song.duration
    regions = {}
    for name in SOURCES:
        spans = []
        for start, end in song.regions[name]:
            a = start if start <= 0 else float(np.clip(start + rng.uniform(-reach, reach), 0, duration))
            b = end if end >= duration else float(np.clip(end + rng.uniform(-reach, reach), 0, duration))
            if b > a:
                spans.append((round(a, 6), round(b, 6)))
        regions[name] = spans
    return labels_from_regions(regions, duration=duration, origin=f"jitter {reach:g}")


def rests_of(spans: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    cuts, cursor = [], 0.0
    for start, end in sorted(spans):
        if start > cursor:
            cuts.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < duration:
        cuts.append((cursor, duration))
    return cuts


def no_vocals(song: Song, rng: np.random.Generator) -> Labels:
    """``no vocals`` regions only, each of the vocals' rests with its ends moved inwards by up to 1 s."""
    duration = song.duration
    lines = []
    for start, end in rests_of(song.regions["vocals"], duration):
        a = start if start <= 0 else start + rng.uniform(0, 1)
        b = end if end >= duration else end - rng.uniform(0, 1)
        if b > a:
            lines.append(f"{a:.6f}\t{b:.6f}\tno vocals")
    return parse_labels("\n".join(lines) + "\n", origin="no vocals", duration=duration)


def short_rests(song: Song, seconds: float) -> Labels:
    """Every source labelled playing except ``seconds`` in the middle of each of its true rests (how long a
    labelled rest must be to help)."""
    duration = song.duration
    regions = {}
    for name in SOURCES:
        quiet = [((a + b - min(seconds, b - a)) / 2, (a + b + min(seconds, b - a)) / 2)
                 for a, b in rests_of(song.regions[name], duration)]
        regions[name] = [(round(a, 6), round(b, 6)) for a, b in rests_of(quiet, duration) if b > a]
    return labels_from_regions(regions, duration=duration, origin=f"rests of {seconds:g} s")


def guidance(kind: str, song: Song, pretrained: np.ndarray, rng: np.random.Generator) -> Labels:
    if kind == "exact":
        return song_labels(song)
    if kind.startswith("jitter"):
        return jittered(song, float(kind[len("jitter"):]), rng)
    if kind == "draft":
        return draft_labels([pretrained], [song.mix], song.samplerate, SOURCES, settings=DraftSettings())
    if kind.startswith("draft:"):  # draft:SETTING=VALUE[:...]: the draft with other DraftSettings
        pairs = [part.split("=") for part in kind.split(":")[1:]]
        settings = DraftSettings(**{key: float(value) for key, value in pairs})
        return draft_labels([pretrained], [song.mix], song.samplerate, SOURCES, settings=settings)
    if kind == "vocals":
        return labels_from_regions({"vocals": song.regions["vocals"]}, duration=song.duration, origin="vocals only")
    if kind == "novocals":
        return no_vocals(song, rng)
    if kind == "allbutvocals":  # every source's true regions but the vocals', which stay unconstrained
        regions = {name: song.regions[name] for name in SOURCES if name != "vocals"}
        return labels_from_regions(regions, sources=SOURCES, duration=song.duration, origin="all but vocals")
    if kind.startswith("only:"):  # only:NAME+NAME: the named sources' true regions, the others unconstrained
        names = kind[len("only:"):].split("+")
        unknown = [name for name in names if name not in SOURCES]
        if unknown:
            raise ValueError(f"unknown sources {unknown} in {kind!r}; use {', '.join(SOURCES)}")
        return labels_from_regions({name: song.regions[name] for name in names}, sources=SOURCES,
                                   duration=song.duration, origin=kind)
    if kind.startswith("rest"):
        return short_rests(song, float(kind[len("rest"):]))
    raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")


def kind_of(row: str) -> str:
    """The kind of guidance of a result row (``KIND[@GUARD][~ANCHOR]``)."""
    return row.split("@")[0].split("~")[0]


def activity_scores(labels: Labels, truth: np.ndarray, rate: int) -> dict[str, dict[str, float]]:
    """Per source: seconds of labelled-active time that is truly active (tp), labelled active but silent (fp),
    labelled silent but active (fn)."""
    drawn = activation_matrix(labels, rate, truth.shape[1]) > 0.5
    real = truth > 0.5
    return {name: {"tp": float((drawn[i] & real[i]).sum()) / rate, "fp": float((drawn[i] & ~real[i]).sum()) / rate,
                   "fn": float((~drawn[i] & real[i]).sum()) / rate} for i, name in enumerate(SOURCES)}


# --- scoring ---------------------------------------------------------------------------------------------


def score(references: np.ndarray, estimates: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float | None]]:
    return {name: {"sdr": mdx_sdr(references[i], estimates[i]), "leakage": leakage_db(estimates[i], truth[i])}
            for i, name in enumerate(SOURCES)}


def gains(records: list[dict], row: str, column: str) -> dict[str, float] | None:
    """Mean over songs of the gain over B0 per source, the mean over sources, the worst source, the leakage drop."""
    per_song = []
    drops = []
    for record in records:
        if row not in record["rows"] or column not in record["rows"][row]:
            continue
        scores, base = record["rows"][row][column], record["b0"]
        per_song.append([scores[n]["sdr"] - base[n]["sdr"] for n in SOURCES])
        drops += [base[n]["leakage"] - scores[n]["leakage"] for n in SOURCES
                  if base[n]["leakage"] is not None and scores[n]["leakage"] is not None]
    if not per_song:
        return None
    by_source = np.mean(per_song, axis=0)
    worst = int(np.argmin(by_source))
    return {**{n: float(v) for n, v in zip(SOURCES, by_source)}, "mean": float(np.mean(per_song)),
            "worst": float(by_source[worst]), "worst_source": SOURCES[worst],
            "leakage_drop": float(np.mean(drops)) if drops else float("nan"), "songs": len(per_song),
            "per_song": [float(np.mean(g)) for g in per_song]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.time()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS and not k.startswith(("draft:", "only:"))]
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}; use {', '.join(KINDS)}")
    guards: list[float | None] = [None] if args.guards is None else [float(g) for g in args.guards.split(",")]
    anchors: list[float | None] = [None] if args.anchors is None else [float(a) for a in args.anchors.split(",")]
    variants = [v.strip() for v in args.resplit_variants.split(",") if v.strip()]
    timbres = [float(t) for t in args.timbres.split(",")]
    loaded = hub.resolve_model(args.model, offline=True)
    request = AdaptationRequest(epochs=args.epochs, gamma=args.gamma)
    pipeline = GuidedSeparator(loaded, adaptation=request)
    default_mode, default_guide = pipeline.resplit_mode, pipeline.resplit_guide  # mode None: the resplit rule
    settings = resolve_settings(request, recommendation(loaded), cuda=False)
    print(f"model {loaded.name} (sha256 {loaded.sha256[:8]}), generator {args.generator}, {args.songs} songs x "
          f"{args.duration:g} s, rests {args.rests}, seeds {args.first_seed}..{args.first_seed + args.songs - 1}"
          + (f", timbres {timbres}" if args.generator != "other" else ""))
    print("adaptation: " + ", ".join(f"{k}={v}" for k, v in settings.to_dict().items()
                                     if k in ("strategy", "epochs", "lr", "window", "hop", "optimizer", "gamma", "guard", "anchor")))
    print(f"resplit default: mode, guard {RESPLIT_RULE}; "
          f"guide {default_guide}; variants scored: {', '.join(variants)}")

    def use(variant: str) -> None:
        """Set the pipeline's post-filter to a variant: ``default`` (what separate --labels does: the resplit
        rule), ``gate`` or ``mode/guide``, each optionally ``@SEC`` (the filter's guard band; else the rule's for
        ``default``, none for the others)."""
        name, at, seconds = variant.partition("@")
        pipeline.resplit_mode, pipeline.resplit_guide, pipeline.filter_guard = default_mode, default_guide, None
        pipeline.post_filter = "gate" if name == "gate" else "resplit"
        if name not in ("default", "gate"):
            mode, _, guide = name.partition("/")
            pipeline.resplit_mode, pipeline.resplit_guide, pipeline.filter_guard = mode, guide or default_guide, 0.0
        if at:
            pipeline.filter_guard = float(seconds)

    records, activity = [], {k: {n: {"tp": 0.0, "fp": 0.0, "fn": 0.0} for n in SOURCES} for k in kinds}
    for k in range(args.songs):
        seed = args.first_seed + k
        song = make_song(args.generator, seed, args.duration, timbres[k % len(timbres)], args.rests)
        truth = activation_matrix(song_labels(song), song.samplerate, song.frames)
        references = np.stack([song.stems[name] for name in SOURCES])
        started = time.time()
        pipeline.reset()
        pipeline.post_filter = None
        pretrained = pipeline.separate_array(song.mix).model
        record: dict = {"seed": seed, "b0": score(references, pretrained, truth), "rows": {}}
        for kind in kinds:
            base = kind.split(":")[0]
            rng = np.random.default_rng([args.jitter_seed, seed, KINDS.index(base) if base in KINDS else len(KINDS)])
            labels = guidance(kind, song, pretrained, rng)
            for name, counts in activity_scores(labels, truth, song.samplerate).items():
                for key, value in counts.items():
                    activity[kind][name][key] += value
            if args.activity_only:
                continue
            pipeline.reset()
            columns: dict[str, dict] = {}
            use("default")
            columns["B0+resplit"] = score(references, pipeline.filter_array(song.mix, pretrained, labels).written, truth)
            for variant in variants:  # the same filters without training (guided by B0's own stems)
                if variant != "default":
                    use(variant)
                    columns[f"B0+{variant}"] = score(
                        references, pipeline.filter_array(song.mix, pretrained, labels).written, truth)
            acts = activation_matrix(labels, song.samplerate, song.frames)
            # What `ugosa separate --labels` writes (the resplit rule, after the held-out check's decision): with
            # rests of too few sources it filters the pretrained stems instead of adapting (the rows adapt anyway,
            # to compare).
            filters = too_few_rests(resting_sources(acts, SOURCES), SOURCES)
            for guard, anchor in itertools.product(guards, anchors):
                row = kind + ("" if guard is None else f"@{guard:g}") + ("" if anchor is None else f"~{anchor:g}")
                tried = AdaptationRequest(epochs=args.epochs, gamma=args.gamma, guard=guard, anchor=anchor)
                t0 = time.time()
                pipeline.post_filter = None
                try:
                    plan = pipeline.plan_array(song.mix, acts, request=tried, estimate=False)
                except InputError as exc:  # no labelled rest: adapting refuses it (separate re-splits B0's stems)
                    print(f"song {k} seed {seed} {row}: not adapted: {exc.message}")
                    pipeline.reset()
                    adapted = pretrained
                else:
                    pipeline.adapt(plan)
                    pipeline.post_filter = None
                    adapted = pipeline.separate_array(song.mix).model
                cols = {**columns, "adapted": score(references, adapted, truth)}
                for variant in variants:
                    use(variant)
                    written = pipeline.filter_array(song.mix, adapted, labels, pretrained=pretrained).written
                    cols[f"+{variant}"] = score(references, written, truth)
                if "+default" in cols:
                    cols["separate"] = columns["B0+resplit"] if filters else cols["+default"]
                record["rows"][row] = cols
                mean = np.mean([cols["adapted"][n]["sdr"] - record["b0"][n]["sdr"] for n in SOURCES])
                print(f"song {k} seed {seed} {row:<16} gain {mean:+.2f} dB, "
                      + ", ".join(f"{c} {np.mean([cols[c][n]['sdr'] - record['b0'][n]['sdr'] for n in SOURCES]):+.2f}"
                                  for c in cols if c != "adapted")
                      + f" ({time.time() - t0:.0f} s)", flush=True)
        records.append(record)
        print(f"song {k} done in {time.time() - started:.0f} s", flush=True)

    rows = list(records[0]["rows"]) if records else []
    columns = ["adapted", *[f"+{v}" for v in variants], *(["separate"] if "default" in variants else []),
               "B0+resplit",
               *[c for c in (records[0]["rows"][rows[0]] if rows else {}) if c.startswith("B0+") and c != "B0+resplit"]]
    summary = {row: {column: gains(records, row, column) for column in columns} for row in rows}
    print("\nMean gain over B0 (whole-song SDR, dB; mean over songs of the mean over sources), worst source, "
          "leakage drop (dB)")
    header = f"{'guidance':<16} " + " ".join(f"{c:>22}" for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = []
        for column in columns:
            g = summary[row][column]
            cells.append("-" if g is None else f"{g['mean']:+.2f} {g['worst_source'][:5]} {g['worst']:+.2f} {g['leakage_drop']:4.1f}")
        print(f"{row:<16} " + " ".join(f"{c:>22}" for c in cells))
    print("\nPer-source mean gain over B0 of adaptation alone (dB): drums / bass / other / vocals")
    for row in rows:
        g = summary[row]["adapted"]
        if g is not None:
            print(f"{row:<16} " + " / ".join(f"{g[n]:+.2f}" for n in SOURCES))
    if len(variants) and records:
        print("\nPer song, gain of adaptation alone and after each post-filter (dB)")
        for row in rows:
            for column in [c for c in columns if not c.startswith("B0+")]:
                g = summary[row][column]
                if g is not None:
                    print(f"{row:<16} {column:<16} " + " ".join(f"{v:+.2f}" for v in g["per_song"]))
    print("\nLabelled activity against the truth (precision / recall of active time, per source)")
    for kind in kinds:
        cells = []
        for name in SOURCES:
            c = activity[kind][name]
            precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
            recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
            cells.append(f"{name} {precision:.2f}/{recall:.2f}")
        print(f"{kind:<16} " + "  ".join(cells))
    exact_rows = [r for r in rows if kind_of(r) == "exact"]
    for exact in exact_rows:
        suffix = exact[len("exact"):]
        base = summary[exact]["adapted"]
        for row in rows:
            if row.startswith("jitter") and row.endswith(suffix) and base and base["mean"] > 0:
                kept = summary[row]["adapted"]["mean"] / base["mean"]
                print(f"{row}: keeps {kept:.0%} of the exact-label gain{suffix and ' (same guard)'}"
                      + (f" (target >= {TARGET_KEPT:.0%} at 0.5 s: {'met' if kept >= TARGET_KEPT else 'MISSED'})"
                         if kind_of(row) == "jitter0.5" else ""))
    if not args.activity_only:
        below = [(row, column) for row in rows for column in [c for c in columns if not c.startswith("B0+")]
                 if summary[row][column] is not None and summary[row][column]["mean"] < 0]
        print("mean SDR below B0's: " + (", ".join(f"{r} {c}" for r, c in below) if below else "none"))
    minutes = (time.time() - began) / 60
    print(f"\n{minutes:.1f} min on {platform.machine()}, {args.threads} torch threads, "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    if args.json is not None:
        args.json.write_text(json.dumps({"arguments": {k: str(v) for k, v in vars(args).items()},
                                         "model_sha256": loaded.sha256, "summary": summary, "records": records,
                                         "activity": activity}, indent=1))


if __name__ == "__main__":
    main()
