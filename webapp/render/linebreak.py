"""Where a run of text without spaces may be broken across lines (titles, texts and captions).

Thai, Lao, Khmer and Burmese put no spaces between words, so a sentence is one run: it is broken
between words, found by ICU's line breaker and its dictionaries (icu4py), the way browsers and
word processors break it. Only a single word too long for a line is broken inside, between
grapheme clusters, and never before a sign that belongs to the letter before it (a combining
mark, a following vowel such as า or ะ, ๆ, ฯ) nor after a leading vowel (เ แ โ ใ ไ), nor before
closing punctuation.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from .fonts import is_mark

# Thai and Lao signs written after the letter they belong to (not combining marks), and joiners.
_NO_BREAK_BEFORE = set("\u0e2f\u0e30\u0e32\u0e33\u0e45\u0e46\u0eaf\u0eb0\u0eb2\u0eb3\u0ec6\u200d\u2060")
# Vowels written before the consonant they follow in speech: a line never ends with one.
LEADING_VOWELS = set("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")
WINDOW = 600  # characters looked at for one line's break: more than any line holds
_CONTEXT = 40  # characters after the window, so the words at its end are read whole


def head_length(word: str, fits: Callable[[int], bool]) -> int:
    """How much of `word` (no spaces) to put on a line: the longest head for which `fits(length)`
    holds (which must only get harder as the head grows) that ends between two words; if not even
    the first word fits, between two clusters; at least one cluster however narrow the room."""
    best = _longest(word_breaks(word), fits)
    if best:
        return best
    clusters = cluster_breaks(word[:WINDOW])  # a word longer than the line
    return _longest(clusters, fits) or (clusters[0] if clusters else len(word))


def word_breaks(word: str) -> list[int]:
    """Offsets inside `word` where ICU's line breaker allows a break (between Thai words…), in
    its first WINDOW characters: a line holds fewer, and a long caption is split line by line
    without reading the rest again each time."""
    if word.isascii():
        return []  # a run of Latin letters without spaces is one word
    from icu4py.breakers import LineBreaker  # ICU's ~8 MB only in processes that break such text

    if len(word) <= WINDOW:
        return [start for start, _ in LineBreaker(word, "en").segments() if 0 < start < len(word)]
    starts = LineBreaker(word[: WINDOW + _CONTEXT], "en").segments()
    return [start for start, _ in starts if 0 < start <= WINDOW]  # the words around the cut seen whole


def cluster_breaks(word: str) -> list[int]:
    """Offsets inside `word` between clusters that may be parted (see the module's rules)."""
    return [i for i in range(1, len(word)) if can_break_before(word, i)]


def can_break_before(word: str, i: int) -> bool:
    ch, prev = word[i], word[i - 1]
    if is_mark(ch) or ch in _NO_BREAK_BEFORE or prev in LEADING_VOWELS or prev == "\u200d":
        return False
    return unicodedata.category(ch) not in ("Pe", "Po") or ch in "\u3001\u3002"


def _longest(candidates: list[int], fits: Callable[[int], bool]) -> int:
    """The largest candidate for which `fits` holds (a binary search), 0 if none does."""
    best, lo, hi = 0, 0, len(candidates) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            best, lo = candidates[mid], mid + 1
        else:
            hi = mid - 1
    return best
