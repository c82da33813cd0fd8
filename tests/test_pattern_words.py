"""Name patterns said in words: every pattern of the schema is said, and the words are true."""

from __future__ import annotations

import re
import string

import pytest

from compiler import model
from compiler.pattern_words import describe_pattern
from compiler.validate import _PATTERN_WORDS

# Patterns of other shapes; their errors quote the expression (they are rarely met by hand).
QUOTED = {
    r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}:[0-9]{1,5}$",  # host:port
    r"^[0-9]{1,9}(\.[0-9]{1,6})?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$",  # a Kubernetes quantity
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$",  # a Kubernetes label value
}


def model_patterns() -> set[str]:
    source = open(model.__file__, encoding="utf-8").read()
    return set(re.findall(r'_pattern\(r"(.*?)"\)', source))


def allows(words: str, char: str) -> bool:
    """What the words say of one character."""
    kinds = {"a letter": char.isascii() and char.isalpha(),
             "a lowercase letter": char in string.ascii_lowercase,
             "an uppercase letter": char in string.ascii_uppercase,
             "a digit": char in string.digits}
    return any(k in words and ok for k, ok in kinds.items()) or f"'{char}'" in words


@pytest.mark.parametrize("pattern", sorted(model_patterns()))
def test_every_pattern_is_said_in_words_that_are_true(pattern: str) -> None:
    if pattern in QUOTED or pattern in _PATTERN_WORDS:
        return
    words = describe_pattern(pattern)
    assert words, pattern
    one = re.fullmatch(r"\^(\[[^\]]+\])\{(\d+),(\d+)\}\$", pattern)
    if one:
        klass, low, high = one.group(1), int(one.group(2)), int(one.group(3))
        assert words.startswith(f"{low} to {high} characters, each " if low else
                                f"at most {high} characters, each ")
        first = rest = klass
        length = high
    else:
        two = re.fullmatch(r"\^(\[[^\]]+\])(\[[^\]]+\])\{0,(\d+)\}\$", pattern)
        assert two, pattern
        first, rest, length = two.group(1), two.group(2), int(two.group(3)) + 1
        assert words.startswith(f"at most {length} characters, starting with ")
        head, tail = words.split(", each further one ")
        for char in string.printable.strip():
            assert bool(re.fullmatch(first, char)) == allows(head.split("starting with ")[1], char), \
                (pattern, char)
            assert bool(re.fullmatch(rest, char)) == allows(tail, char), (pattern, char)
        return
    for char in string.printable.strip():
        assert bool(re.fullmatch(first, char)) == allows(words, char), (pattern, char)
    # and the length: the longest allowed value matches, one more character does not
    ok = next(c for c in string.ascii_letters + string.digits if re.fullmatch(rest, c))
    assert re.fullmatch(pattern, ok * length) and not re.fullmatch(pattern, ok * (length + 1))


def test_other_shapes_are_not_guessed() -> None:
    assert describe_pattern(r"^[^x]{1,3}$") is None  # negated class
    assert describe_pattern(r"^[A-F]{1,3}$") is None  # a range it cannot name
    assert describe_pattern(r"^(a|b)$") is None
    assert describe_pattern(r"^[a-zA-Z_\-.0-9]{1,25}$") == \
        "1 to 25 characters, each a letter, a digit, '_', '-' or '.'"
