"""What part of an abstract a sentence is: its section label, and whether it states a finding.

Structured abstracts (PubMed, most medical journals) open their parts with an upper-case
label run into the text: "OBJECTIVE To investigate ...", "RESULTS A total of ...",
"CONCLUSIONS These findings suggest ...". The label is not part of the sentence's meaning:
an answer quoting the sentence leaves it out (:func:`strip_section_label`). The label and the
sentence's own wording tell whether it states a result or conclusion ("We found that ...",
"... was associated with ...", "p < 0.01") or only an aim, background or method ("To
investigate whether ...", "We aimed to ...", "This study examined ...")
(:func:`finding_score`): a claim to check, or a question asking why or how, is answered by
a finding, not by the aim of the study that found it.

The label vocabulary is the usual headings of structured abstracts (NLM's list of
structured-abstract labels), not any one data set's.
"""

from __future__ import annotations

import re

from workers.text.answer_types import answer_type, is_question

#: Words of structured-abstract headings (NLM categories BACKGROUND, OBJECTIVE, METHODS,
#: RESULTS, CONCLUSIONS and their usual wordings).
_LABEL_WORDS = frozenset(
    """
    ABSTRACT AIM AIMS ANALYSIS ANALYSES AND AVAILABILITY BACKGROUND CASE CLINICAL COLLECTION
    CONCLUSION CONCLUSIONS CONTEXT CRITERIA DATA DESIGN DISCUSSION ELIGIBILITY EVIDENCE
    EXPERIMENTAL EXPOSURE EXPOSURES EXTRACTION FINDINGS FUNDING GOAL GOALS HYPOTHESIS
    IMPLICATIONS IMPORTANCE INTERPRETATION INTERVENTION INTERVENTIONS INTRODUCTION KEY
    LIMITATIONS MAIN MATERIAL MATERIALS MEASURE MEASUREMENT MEASUREMENTS MEASURES METHOD
    METHODOLOGY METHODS MOTIVATION OBJECTIVE OBJECTIVES OF OUTCOME OUTCOMES PARTICIPANTS
    PATIENTS POPULATION PRACTICE PRESENTATION PRINCIPAL PROCEDURES PURPOSE QUESTION RATIONALE
    RECENT REGISTRATION RELEVANCE RESEARCH RESULT RESULTS REVIEW SEARCH SELECTION SETTING
    SETTINGS SIGNIFICANCE SOURCES STRATEGY STUDY SUBJECTS SUMMARY SYNTHESIS TRIAL
    """.split()
)
_LABEL = re.compile(r"^\s*((?:[A-Z]+(?:\s*[/&,]\s*|\s+)){1,6}?)(?=[A-Z][a-z]|[a-z0-9(\"'])")
_LABEL_END = re.compile(r"^\s*([A-Z][A-Z /&,]*?[A-Z])\s*[:.]\s*")

#: Labels of the parts that state results or conclusions, and of those that do not.
_FINDING_LABELS = frozenset({"RESULT", "RESULTS", "CONCLUSION", "CONCLUSIONS", "FINDINGS"})
_FINDING_LABELS |= {"INTERPRETATION", "SIGNIFICANCE", "IMPLICATIONS", "SUMMARY"}
_AIM_LABELS = frozenset(
    """AIM AIMS OBJECTIVE OBJECTIVES PURPOSE GOAL GOALS BACKGROUND CONTEXT INTRODUCTION
    RATIONALE HYPOTHESIS METHOD METHODS METHODOLOGY DESIGN SETTING SETTINGS PARTICIPANTS
    PATIENTS SUBJECTS MATERIALS INTERVENTION INTERVENTIONS MEASURES MEASUREMENTS FUNDING
    REGISTRATION IMPORTANCE MOTIVATION""".split()
)

_AIM = re.compile(
    r"^(?:(?:the|our|this|these)\s+)?(?:"
    r"to\s+(?:investigate|determine|assess|evaluate|examine|explore|test|compare|identify|"
    r"describe|characteri[sz]e|estimate|quantify|clarify|establish|analy[sz]e|review|study|"
    r"understand|measure|report|address|elucidate|define|develop)"
    r"|(?:main\s+|primary\s+)?(?:aims?|objectives?|purposes?|goals?)\s+(?:of|was|were|is|are)"
    r"|(?:present\s+|current\s+)?(?:study|studies|trial|review|paper|article|work|report)\s+"
    r"(?:aims?|aimed|sought|seeks|investigat|examin|assess|evaluat|explor|was\s+designed)"
    r"|we\s+(?:aimed|aim|sought|seek|set\s+out|wished|wanted|hypothesi[sz]ed|hypothesi[sz]e|"
    r"asked|tested\s+whether|investigated\s+whether|examined\s+whether|studied\s+whether|"
    r"assessed\s+whether|evaluated\s+whether|determined\s+whether|explored\s+whether)"
    r"|it\s+(?:is|was|remains)\s+(?:unclear|unknown|not\s+known|uncertain)"
    r"|little\s+is\s+known|whether\s"
    r")",
    re.IGNORECASE,
)
_FINDING = re.compile(
    r"\b(?:we\s+(?:found|find|show|showed|shown|demonstrate|demonstrated|observed|observe|"
    r"identified|report|reveal|revealed|conclude|concluded|provide\s+evidence)"
    r"|(?:results?|findings|data|analys[ie]s|evidence)\s+(?:show|showed|suggest|suggested|"
    r"indicate|indicated|demonstrate|demonstrated|reveal|revealed|support|supported|"
    r"provide|provided|confirm|confirmed)"
    r"|(?:was|were|is|are)\s+(?:significantly\s+|strongly\s+|independently\s+|inversely\s+|"
    r"positively\s+|negatively\s+)*(?:associated|correlated|linked|related)\s+with"
    r"|significant(?:ly)?|(?:increase|decrease|reduc|improv|induc|inhibit|prevent|"
    r"enhanc|impair|promot|suppress|lower|rais)(?:e|es|ed|ing|tion|tions)?\b"
    r"|(?:resulted|results)\s+in|led\s+to|leads\s+to|is\s+required|are\s+required"
    r"|(?:odds|hazard|risk)\s+ratio|\bp\s*[<=]\s*0?\.\d|\b95\s*%|confidence\s+interval"
    r"|these\s+(?:results|findings|data|observations)|in\s+conclusion|taken\s+together"
    r"|no\s+(?:significant\s+)?(?:difference|association|effect|evidence))",
    re.IGNORECASE,
)


_ASKS_HOW = re.compile(
    r"^(?:why|how|is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)\b",
    re.IGNORECASE,
)


def asks_for_finding(query: str) -> bool:
    """A claim to check ("Aspirin lowers ..."), a yes/no question ("Does aspirin ...?") or a
    why/how question, but not one asking for a date, number or name ("How many ...")."""
    text = query.strip()
    if not is_question(text):
        return True
    return bool(_ASKS_HOW.match(text)) and answer_type(text) is None


#: "To address this, the administration began ...": an infinitive phrase governing a main
#: clause is not an aim (the aim "To investigate whether X" has no clause after it).
_INFINITIVE_CLAUSE = re.compile(r"^to\s[^,;]{3,160},\s+\S", re.IGNORECASE)


def _label_of(sentence: str) -> tuple[str, str] | None:
    """(label, rest) when the sentence opens with a structured-abstract heading."""
    for pattern in (_LABEL_END, _LABEL):
        match = pattern.match(sentence)
        if not match:
            continue
        label = match.group(1).strip(" /&,")
        words = re.split(r"[\s/&,]+", label)
        # the heading's last word can be the text's first ("RESULTS A total ...": "A")
        rest = sentence[match.end() :]
        if pattern is _LABEL and len(words) > 1 and len(words[-1]) == 1:
            rest = sentence[match.start(1) + label.rindex(words[-1]) :]
            words = words[:-1]
            label = " ".join(words)
        if words and all(w in _LABEL_WORDS for w in words) and words[0] not in {"AND", "OF"}:
            if not rest.strip():
                return None
            return label, rest.lstrip()
    return None


def section_label(sentence: str) -> str | None:
    """The structured-abstract heading the sentence opens with ("RESULTS"), if any."""
    found = _label_of(sentence)
    return found[0] if found else None


def strip_section_label(sentence: str) -> str:
    """The sentence without a leading structured-abstract heading."""
    found = _label_of(sentence)
    return found[1] if found else sentence


def finding_score(sentence: str) -> float:
    """+1 for a sentence that states a result or conclusion, -1 for one that states only an
    aim, background or method, 0 when neither shows (label first, then the wording)."""
    found = _label_of(sentence)
    text = found[1] if found else sentence
    if found:
        words = set(re.split(r"[\s/&,]+", found[0]))
        if words & _FINDING_LABELS:
            return 1.0
        if words & _AIM_LABELS:
            return -1.0
    if _AIM.match(text) and not _INFINITIVE_CLAUSE.match(text):
        return -1.0
    return 1.0 if _FINDING.search(text) else 0.0


__all__ = ["asks_for_finding", "finding_score", "section_label", "strip_section_label"]
