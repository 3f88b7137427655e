"""Whether a text asks something, what kind of answer a question asks for, and candidate spans
of that kind in a sentence."""

from __future__ import annotations

import re

_NUMBER = r"(?:[$€£]\s?)?\d[\d,.]*(?:\s?(?:%|percent|million|billion|thousand|hundred))?"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)"
)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "date": re.compile(
        rf"\b(?:{_MONTH}\s+\d{{1,2}},?\s+\d{{3,4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{3,4}}|"
        rf"{_MONTH}\s+\d{{3,4}}|(?:1[0-9]|20)\d\d(?:s)?|\d{{1,2}}(?:st|nd|rd|th)\s+century)\b"
    ),
    "number": re.compile(rf"(?<![\w]){_NUMBER}(?:\s+[a-z]+)?"),
    "proper": re.compile(
        r"\b(?:[A-Z][\w'\u2019-]+)(?:\s+(?:of|the|de|von|and|&)?\s*[A-Z][\w'\u2019-]+)*"
    ),
}


_ASKING = re.compile(
    r"^(who|whom|whose|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
    r"will|would|should|shall|may|might|has|have|had|name|list|explain|describe)\b",
    re.IGNORECASE,
)


_PREPOSED = re.compile(r"^\w+\s+(what|which|whom|whose)\b", re.IGNORECASE)  # "In what ..."


def is_question(text: str) -> bool:
    """A question or request ("Who ...", "In what ...", "... ?", "Name ..."), not a claim."""
    text = text.strip()
    return "?" in text or bool(_ASKING.match(text) or _PREPOSED.match(text))


def answer_type(question: str) -> str | None:
    """``date``, ``number``, ``proper`` (a name or place) or None when it cannot tell."""
    # a capitalised wh-word inside the question is a name ("Doctor Who"), not the question
    q = re.sub(r"(?<=[\w,] )(Who|When|Where|What|Which)\b", "", question.strip()).lower()
    if re.search(
        r"\b(when|(what|which) (years?|centur(y|ies)|dates?|decades?|months?|days?|"
        r"eras?))\b",
        q,
    ):
        return "date"
    if re.search(
        r"\b(how (many|much|long|old|far|large|big|tall|high|fast|often|deep|wide)|"
        r"(what|which) (percentage|percent|proportion|amount|number|population|age|"
        r"temperature|distance|size))\b",
        q,
    ):
        return "number"
    if re.search(
        r"\b(who|whom|whose|where|(what|which) (city|country|state|province|region|"
        r"county|town|river|language|company|team|university|organization|nation|"
        r"party|empire|dynasty|king|president|person|tribe|island|continent|ocean|sea|"
        r"mountain|school|college|church|newspaper)|(what|which) (is|was) the name|^which)\b",
        q,
    ):
        return "proper"
    return None


def candidates(sentence: str, kind: str) -> list[tuple[int, str]]:
    """(character offset, text) of spans of the given kind."""
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        return []
    spans = [(m.start(), m.group(0).strip(" ,.")) for m in pattern.finditer(sentence)]
    if kind == "proper":
        # a sentence's first word is capitalised whatever it is: it is a name only when the
        # span goes on with another capitalised word
        spans = [(at, text) for at, text in spans if sentence[:at].strip(" \"'([") or " " in text]
    return spans
