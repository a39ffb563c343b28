"""Source (stem) names: the four MUSDB18 sources every released separator makes, in their order."""

from __future__ import annotations

DEFAULT_SOURCES = ("drums", "bass", "other", "vocals")
