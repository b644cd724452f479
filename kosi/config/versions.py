"""Version comparison following the UAPI group's version format specification.

Used by ImageVersion= and SystemdVersion= matches (`>=254`, `!=1.2~rc1`, ...) and by
MinimumVersion=. The order: `~` marks something older than anything else at that point
(pre-releases), a string with more segments is newer, `-` and `^` and `.` separate
segments in that order of increasing weight, numbers compare numerically and are newer
than letters, letters compare alphabetically.
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable

_VALID = re.compile(r"[A-Za-z0-9~\-^.]")


def _skip_invalid(s: str, i: int) -> int:
    while i < len(s) and not _VALID.match(s[i]):
        i += 1
    return i


def _cmp(x: Any, y: Any) -> int:
    """-1, 0 or 1 for two values of one type (both ints or both strings)."""
    return (x > y) - (x < y)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as a is older than, equal to or newer than b."""
    i = j = 0
    while True:
        i, j = _skip_invalid(a, i), _skip_invalid(b, j)
        ca, cb = a[i : i + 1], b[j : j + 1]
        if ca == "~" or cb == "~":
            if (ca == "~") != (cb == "~"):
                return -1 if ca == "~" else 1
            i, j = i + 1, j + 1
            continue
        if not ca or not cb:
            return _cmp(a[i:], b[j:])
        for separator in "-^.":
            if ca == separator or cb == separator:
                if (ca == separator) != (cb == separator):
                    return -1 if ca == separator else 1
                i, j = i + 1, j + 1
                ca, cb = a[i : i + 1], b[j : j + 1]
        if ca.isdigit() or cb.isdigit():
            da = re.match(r"[0-9]*", a[i:]).group()  # type: ignore[union-attr]
            db = re.match(r"[0-9]*", b[j:]).group()  # type: ignore[union-attr]
            # A number is newer than no number (e.g. a letter or the end) at the same place.
            if not da or not db:
                return -1 if not da else 1
            r = _cmp(int(da), int(db))
            if r:
                return r
            i, j = i + len(da), j + len(db)
        else:
            la = re.match(r"[A-Za-z]*", a[i:]).group()  # type: ignore[union-attr]
            lb = re.match(r"[A-Za-z]*", b[j:]).group()  # type: ignore[union-attr]
            r = _cmp(la, lb)
            if r:
                return r
            if not la and not lb:
                # Only separators we already consumed: move on to avoid looping forever.
                i, j = i + 1, j + 1
                continue
            i, j = i + len(la), j + len(lb)


OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def split_operator(text: str) -> tuple[str, str]:
    """`>=1.2` -> (">=", "1.2"); no operator means equality."""
    text = text.strip()
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if text.startswith(op):
            return op, text[len(op) :].strip()
    return "==", text


def version_matches(actual: str, condition: str) -> bool:
    op, wanted = split_operator(condition)
    return OPERATORS[op](compare_versions(actual, wanted), 0)
