"""Untrusted names (file names, episodes, queries) made safe for one line of text.

A file name may hold any character but `/` and NUL: a newline would add a
line to an M3U playlist or an EDL, an escape sequence would recolour or
rewrite a terminal, a character that XML 1.0 forbids would make an XSPF
playlist unreadable. `visible` turns every such character into a visible
escape (`\\n`, `\\x1b`, `\\u2028`), leaving all other text, non-ASCII
included, as it is.
"""

from __future__ import annotations

import re
from typing import Sequence

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]")
"""What cannot go into one line of text for people: C0 and C1 control characters and DEL
(line breaks, terminal escapes; all but tab, LF and CR are illegal in XML 1.0), the Unicode
line and paragraph separators (a line break to `str.splitlines` and to JavaScript), the
bidirectional overrides (they make a name read differently from its bytes), the two
noncharacters XML forbids, and lone surrogates (the undecodable bytes of a non-UTF-8 file
name, as Python's surrogateescape carries them)."""

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the undecodable byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every character of `UNSAFE` written as a visible escape:
    "a\\nb" → "a\\\\nb", "\\x1b[31m" → "\\\\x1b[31m", b"\\xff" as surrogateescape → "\\\\xff"."""
    return UNSAFE.sub(_escape, str(text))


def is_safe(text: str) -> bool:
    """Whether `text` fits on one line as it is (`visible` would not change it)."""
    return UNSAFE.search(str(text)) is None


def file_uri(path: str) -> str:
    """`file:///…` for an absolute path; a percent-encoded relative reference for any
    other (a stored path is untrusted: a damaged index may hold one), so no export fails
    and no path text reaches a line or an element as it is."""
    from pathlib import PurePosixPath
    from urllib.parse import quote

    text = str(path)
    if text.startswith("/") and "\0" not in text:
        return PurePosixPath(text).as_uri()
    return quote(text, safe="")


def first_few(texts: Sequence[str], limit: int = 3) -> str:
    """The first `limit` of `texts`, comma-separated, then "…" when there are more."""
    return ", ".join(texts[:limit]) + (" …" if len(texts) > limit else "")
