"""What to write after adapting to one song, decided from the labels alone.

Part of every long enough labelled rest is kept out of training (:func:`ugosa_cli.adaptation.holdout_mask`).
On those held-out stretches the pretrained and the adapted model are measured the same way, by the two terms of
the loss they were trained with:

- *leakage*: how loud each source's stem is where it is labelled silent, relative to how loud it is where it is
  labelled playing (dB; relative to its own level, so a model that merely turns a stem down gains nothing), its
  power averaged over the sources;
- *residual*: what the stems labelled playing leave unexplained of the mixture there (dB, relative to the
  mixture).

Their sum (as powers) is the model's held-out *error*. Two rules, chosen on tuning songs (BENCHMARKS.md,
"Deciding what to write"):

- before training: when the pretrained model's error is already below :data:`CLEAN_DB`, it separates this song
  well and adapting does not pay (on the tuning songs of both small models every song where adapting lost against
  the labels applied to the pretrained stems had an error below -8.1 dB, every one where it gained most above
  -7.2 dB): nothing is trained, and the labels are applied to the pretrained stems;
- after training: when the adapted model's error is more than :data:`MAX_RISE_DB` above the pretrained model's,
  adapting did not help, and the pretrained stems (with the labels applied) are written.

During training the error is measured again every :data:`CHECK_EVERY` steps, and training stops at the first
check where it has fallen by less than :data:`MIN_FALL_DB_PER_STEP` a step on average since training began
(:func:`keeps_falling`): where the labels have little left to teach, further steps change the stems in ways the
held-out rests cannot see (on songs the small HT-Demucs separates well the error fell by 0.003 to 0.006 dB a
step while the stems got worse after about 40 steps; where adapting paid it fell faster).

With no held-out rest (every rest too short, or ``--holdout 0``) nothing can be checked: the adapted stems are
written, and the report says that they were not checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# The pretrained model's held-out error (dB) below which a song counts as already well separated, and the rise of
# the error after adapting beyond which adapting counts as having made things worse. CLEAN_DB sits in the middle
# of the tuning songs' gap between -8.2 dB (lost) and -7.2 dB (gained), rounded to the half dB.
CLEAN_DB = -7.5
MAX_RISE_DB = 1.0
# Early stopping: steps between two held-out checks during training, and the mean fall of the held-out error per
# step since training began (dB) below which training stops. 0.006 to 0.008 gave the same results on the tuning
# songs of both small models (BENCHMARKS.md, "Deciding what to write").
CHECK_EVERY = 10
MIN_FALL_DB_PER_STEP = 0.007

ADAPTED = "adapted"
PRETRAINED = "pretrained"


@dataclass(frozen=True)
class SourceCheck:
    """One source on the held-out rests: seconds checked, and its leakage (dB) before and after adapting."""

    source: str
    seconds: float
    before_db: float
    after_db: float | None = None

    @property
    def change_db(self) -> float | None:
        return None if self.after_db is None else self.after_db - self.before_db


@dataclass(frozen=True)
class Evidence:
    """The held-out check of one song: one :class:`SourceCheck` per source with a held-out rest."""

    checks: tuple[SourceCheck, ...]
    # What the stems labelled playing leave unexplained of the mixture on the held-out stretches (dB relative to
    # the mixture there), with the pretrained and the adapted weights.
    residual_before_db: float | None = None
    residual_after_db: float | None = None

    @property
    def seconds(self) -> float:
        """Seconds of held-out rest, summed over the sources."""
        return sum(check.seconds for check in self.checks)

    @property
    def before_db(self) -> float | None:
        """The pretrained stems' leakage over the checked sources (their mean power ratio, in dB: the leakiest
        weigh the most)."""
        return _power_mean([check.before_db for check in self.checks])

    @property
    def after_db(self) -> float | None:
        """The adapted stems' leakage, as :attr:`before_db` (None before adapting)."""
        values = [check.after_db for check in self.checks]
        return None if not values or any(v is None for v in values) else _power_mean([v for v in values if v is not None])

    @property
    def error_before_db(self) -> float | None:
        """The pretrained model's held-out error: its leakage and residual summed as powers (dB)."""
        return _error(self.before_db, self.residual_before_db)

    @property
    def error_after_db(self) -> float | None:
        """The adapted model's held-out error (None before adapting)."""
        return _error(self.after_db, self.residual_after_db)

    def with_after(self, after: dict[str, float], residual: float | None = None) -> Evidence:
        """The same check with the adapted model's leakage per source, and its residual."""
        return Evidence(tuple(SourceCheck(c.source, c.seconds, c.before_db, after.get(c.source)) for c in self.checks),
                        self.residual_before_db, residual)

    def to_dict(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 2),
            "before_db": _rounded(self.before_db),
            "after_db": _rounded(self.after_db),
            "residual_before_db": _rounded(self.residual_before_db),
            "residual_after_db": _rounded(self.residual_after_db),
            "error_before_db": _rounded(self.error_before_db),
            "error_after_db": _rounded(self.error_after_db),
            "sources": [{**asdict(c), "seconds": round(c.seconds, 2), "before_db": _rounded(c.before_db),
                         "after_db": _rounded(c.after_db)} for c in self.checks],
        }


@dataclass(frozen=True)
class Decision:
    """What to write: ``adapted`` (the adapted model's stems) or ``pretrained`` (the pretrained model's, with the
    labels applied), and why, in a sentence for the user."""

    write: str
    reason: str
    checked: bool = True  # False: no held-out rest, nothing could be checked

    @property
    def adapted(self) -> bool:
        return self.write == ADAPTED

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def before_training(evidence: Evidence) -> Decision | None:
    """The decision not to train, when the pretrained model's held-out error is already low; else None (train, then
    :func:`after_training`)."""
    error = evidence.error_before_db
    if error is not None and error < CLEAN_DB:
        return Decision(
            PRETRAINED,
            f"the pretrained stems already fit the labels on held-out stretches (error {error:.1f} dB, below "
            f"{CLEAN_DB:g} dB): the model separates this song well, and adapting such songs did not pay in our "
            "tests; the labels were applied to the pretrained stems instead",
        )
    return None


def after_training(evidence: Evidence) -> Decision:
    """Adapted or pretrained, from both models' error on the held-out stretches."""
    before, after = evidence.error_before_db, evidence.error_after_db
    if before is None or after is None:
        return Decision(ADAPTED, "no labelled rest was long enough to hold part of it out, so the adapted stems "
                        "were written unchecked", checked=False)
    if after <= before + MAX_RISE_DB:
        return Decision(ADAPTED, f"on held-out stretches of the labels the adapted model's error is {after:.1f} dB, "
                        f"against the pretrained model's {before:.1f} dB")
    return Decision(
        PRETRAINED,
        f"adapting did not help: on held-out stretches of the labels the adapted model's error rose to {after:.1f} "
        f"dB from the pretrained model's {before:.1f} dB (more than {MAX_RISE_DB:g} dB); the labels were applied to "
        "the pretrained stems instead",
    )


def keeps_falling(evidence: Evidence, steps: int) -> bool:
    """Whether training should go on after ``steps`` steps, from the check made then (``evidence`` with the
    current weights as its "after"): its held-out error has fallen by at least :data:`MIN_FALL_DB_PER_STEP` a step
    since training began. True when nothing can be measured."""
    before, now = evidence.error_before_db, evidence.error_after_db
    if before is None or now is None or steps <= 0:
        return True
    return before - now >= MIN_FALL_DB_PER_STEP * steps


def stop_note(evidence: Evidence, steps: int, planned: int) -> str:
    """The line saying why training stopped after ``steps`` of ``planned`` steps."""
    before, now = evidence.error_before_db, evidence.error_after_db
    assert before is not None and now is not None
    return (
        f"stopped after {steps} of {planned} steps: the held-out error fell by {before - now:.2f} dB in {steps} "
        f"steps, less than {MIN_FALL_DB_PER_STEP:g} dB a step; the labels have little left to teach, and more steps "
        "change the stems where the held-out rests cannot show it (--holdout 0 trains every step, unchecked)"
    )


def _error(leakage: float | None, residual: float | None) -> float | None:
    """Leakage and residual (dB) summed as powers, in dB; either alone when the other is unknown."""
    parts = [value for value in (leakage, residual) if value is not None]
    return None if not parts else 10 * math.log10(sum(10 ** (v / 10) for v in parts))


def _power_mean(values: Sequence[float]) -> float | None:
    """The mean of levels in dB taken as powers, in dB."""
    return None if not values else 10 * math.log10(sum(10 ** (v / 10) for v in values) / len(values))


def _rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 2)
