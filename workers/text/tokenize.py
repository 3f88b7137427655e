"""Tokens, stop words and sentences: the shared vocabulary of the offline provider."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer  # type: ignore[import-not-found,unused-ignore]

_SNOWBALL = Stemmer.Stemmer("english")

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")

STOP_WORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t don didn doesn isn wasn weren won shall may might must also""".split()
)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_terms(text: str) -> list[str]:
    """Lower-cased words without stop words, in order, duplicates kept."""
    return [w for w in words(text) if w not in STOP_WORDS]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem of a lower-cased word."""
    result: str = _SNOWBALL.stemWord(word)
    return result


def stems(text: str) -> list[str]:
    return [stem(w) for w in content_terms(text)]


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]
