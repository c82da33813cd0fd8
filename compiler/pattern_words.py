"""The campaign schema's name patterns, said in words for error messages.

A user who writes `scope: drp_multisite_campaign_2025` should read "1 to 25 characters, each a
letter, a digit, '_', '-' or '.'", not `^[a-zA-Z_\\-.0-9]{1,25}$`. Most of drpc's patterns have one
of two shapes, `^[CLASS]{m,n}$` and `^[FIRST][REST]{0,n}$`; this turns those into words and
returns None for any other (the caller then quotes the expression).
"""

from __future__ import annotations

import re

__all__ = ["describe_pattern"]

_ONE_CLASS = re.compile(r"\^\[((?:\\.|[^\]\\])+)\]\{(\d+),(\d+)\}\$")
_TWO_CLASSES = re.compile(r"\^\[((?:\\.|[^\]\\])+)\]\[((?:\\.|[^\]\\])+)\]\{0,(\d+)\}\$")

_RANGES = {"a-z": "lowercase letter", "A-Z": "uppercase letter", "0-9": "digit"}


def _class_words(body: str) -> str | None:
    """`a-zA-Z0-9_.-` -> "a letter, a digit, '_', '.' or '-'"; None for a negated class or a
    range other than a-z, A-Z, 0-9."""
    if body.startswith("^"):
        return None
    kinds: list[str] = []
    chars: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            chars.append(body[i + 1])
            i += 2
            continue
        if i + 2 < len(body) and body[i + 1] == "-":
            span = body[i:i + 3]
            if span not in _RANGES:
                return None
            kinds.append(_RANGES[span])
            i += 3
            continue
        chars.append(body[i])
        i += 1
    if "lowercase letter" in kinds and "uppercase letter" in kinds:
        kinds = ["letter" if k == "lowercase letter" else k for k in kinds
                 if k != "uppercase letter"]
    order = {"letter": 0, "lowercase letter": 0, "uppercase letter": 0, "digit": 1}
    words = [("an " if k[0] in "aeiou" else "a ") + k
             for k in sorted(dict.fromkeys(kinds), key=order.__getitem__)]
    words += [f"'{c}'" for c in dict.fromkeys(chars)]
    if not words:
        return None
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def describe_pattern(pattern: str) -> str | None:
    """What a value must look like, in words, for the two common shapes (else None)."""
    one = _ONE_CLASS.fullmatch(pattern)
    if one:
        allowed = _class_words(one.group(1))
        low, high = int(one.group(2)), int(one.group(3))
        if allowed is None:
            return None
        size = f"at most {high}" if low == 0 else f"{low} to {high}"
        return f"{size} characters, each {allowed}"
    two = _TWO_CLASSES.fullmatch(pattern)
    if two:
        first, rest = _class_words(two.group(1)), _class_words(two.group(2))
        if first is None or rest is None:
            return None
        return (f"at most {int(two.group(3)) + 1} characters, starting with {first}, each "
                f"further one {rest}")
    return None
