"""What kind of answer a question asks for, and candidate spans of that kind in a sentence."""

from __future__ import annotations

import re

_NUMBER = r"(?:[$€£]\s?)?\d[\d,.]*(?:\s?(?:%|percent|million|billion|thousand|hundred))?"
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December)")
_PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        rf"\b(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{3,4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{3,4}}|"
        rf"{_MONTH}\s+\d{{3,4}}|(?:1[0-9]|20)\d\d(?:s)?|\d{{1,2}}(?:st|nd|rd|th)\s+century)\b"
    ),
    "number": re.compile(rf"(?<![\w]){_NUMBER}(?:\s+[a-z]+)?"),
    "proper": re.compile(r"\b(?:[A-Z][\w'\u2019-]+)(?:\s+(?:of|the|de|von|and|&)?\s*[A-Z][\w'\u2019-]+)*"),
}


def answer_type(question: str) -> str | None:
    """``date``, ``number``, ``proper`` (a name or place) or None when it cannot tell."""
    q = question.lower().strip()
    if re.search(r"\b(when|what year|which year|what century|what date|what decade)\b", q):
        return "date"
    if re.search(r"\b(how many|how much|how long|how old|how far|how large|how big|"
                 r"what percentage|what percent|what amount|what number|how tall|how high)\b", q):
        return "number"
    if re.search(r"\b(who|whom|whose|where|which (city|country|company|team|person|state))\b", q):
        return "proper"
    return None


def candidates(sentence: str, kind: str) -> list[tuple[int, str]]:
    """(character offset, text) of spans of the given kind."""
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        return []
    return [(m.start(), m.group(0).strip(" ,.")) for m in pattern.finditer(sentence)]
