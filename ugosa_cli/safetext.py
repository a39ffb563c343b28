"""Text read from files (labels, file names, model names) made safe to show: control characters and bidirectional
overrides written as visible escapes, so a name cannot move a terminal's cursor or reorder a line or a page."""

from __future__ import annotations

import re

# What a terminal could take as a command, or that reorders the text it shows: C0 controls (tab and newline
# included), DEL, C1 controls, and the Unicode bidirectional embeddings, overrides and isolates; and the
# surrogates in which Python holds the bytes of a file name that are not UTF-8 (they cannot be printed).
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8, as Python holds it: the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control character and bidi override shown as an escape (``\\x1b``, ``\\u202e``), and
    each byte of a file name that is not UTF-8 as ``\\xNN``.

    Every line ugosa prints to a terminal, and every name on a report page, goes through here, so names and
    text read from files (labels, file names, model names) cannot move the cursor, clear the screen, retitle
    the window or reorder the line. The escapes are those of the shell's ``$'...'`` quoting. ``keep``:
    characters left as they are (the tabs of a result line's own columns).
    """
    return UNSAFE_TEXT.sub(lambda m: m.group() if m.group() in keep else _escape_char(m), text)
