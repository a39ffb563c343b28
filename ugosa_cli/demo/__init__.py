"""The offline demonstration: a synthesizer of multitrack songs, the small demo model trained on them, and
the runner behind ``ugosa demo`` (a held-out song separated before and after guided adaptation)."""

from ugosa_cli.demo.runner import (
    DEFAULT_DURATION,
    DEMO_MODEL,
    HELD_OUT_RESTS,
    HELD_OUT_SEED_BASE,
    HELD_OUT_TIMBRE,
    MAX_DURATION,
    DemoResult,
    SourceScore,
    check_demo_folder,
    check_model,
    demo_paths,
    leakage_db,
    run_demo,
    score_stems,
    song_labels,
    write_demo,
)

__all__ = [
    "DEFAULT_DURATION",
    "DEMO_MODEL",
    "HELD_OUT_RESTS",
    "HELD_OUT_SEED_BASE",
    "HELD_OUT_TIMBRE",
    "MAX_DURATION",
    "DemoResult",
    "SourceScore",
    "check_demo_folder",
    "check_model",
    "demo_paths",
    "leakage_db",
    "run_demo",
    "score_stems",
    "song_labels",
    "write_demo",
]
