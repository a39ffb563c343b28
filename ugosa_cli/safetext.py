"""Text read from files (labels, file names, model names) made safe to show: control characters and bidirectional
overrides written as visible escapes, so a name cannot move a terminal's cursor or reorder a line or a page."""

from __future__ import annotations

import re

# What a terminal could take as a command, or that reorders the text it shows: C0 controls (tab and newline
# included), DEL, C1 controls, and the Unicode bidirectional embeddings, overrides and isolates.
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control character and bidi override shown as an escape (``\\x1b``, ``\\u202e``).

    Every line ugosa prints to a terminal, and every name on a report page, goes through here. ``keep``:
    characters left as they are (the tabs of a result line's own columns).
    """
    return UNSAFE_TEXT.sub(lambda m: m.group() if m.group() in keep else _escape_char(m), text)
