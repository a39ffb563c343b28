"""Source (stem) names: the four MUSDB18 sources every released separator makes, in their order, and the
rule every source name read from a file must follow (it becomes a file name and a JSON key)."""

from __future__ import annotations

import re

from ugosa_cli.errors import InputError

DEFAULT_SOURCES = ("drums", "bass", "other", "vocals")

# A source name becomes a file name (the stem) and a JSON key: 1 to 32 lower-case ASCII letters, digits,
# '_' or '-', starting with a letter or digit (drums, bass, other, vocals, guitar, piano, ...).
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
SOURCE_NAME_RULE = "1 to 32 lower-case letters, digits, '_' or '-', starting with a letter or digit"


def check_source_names(names: object) -> tuple[str, ...]:
    """``names`` as a tuple if it is a non-empty list of distinct plain source names (:data:`SOURCE_NAME`).

    Raises :class:`InputError` naming the first bad name; every loader of model files goes through here.
    """
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)) or not names:
        raise InputError(f"sources must be a non-empty list of names, got {names!r:.80}")
    for name in names:
        if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
            raise InputError(f"source name {name!r:.60} is not allowed: source names are {SOURCE_NAME_RULE}")
    if len(set(names)) != len(names):
        raise InputError(f"sources must be distinct names, got {list(names)}")
    return tuple(names)
