"""Section labels of structured abstracts, and findings told from aims (issue 22)."""

from __future__ import annotations

import pytest

from workers.text.sections import (
    asks_for_finding,
    finding_score,
    section_label,
    strip_section_label,
)


@pytest.mark.parametrize(
    ("sentence", "label", "rest"),
    [
        (
            "OBJECTIVE To investigate the association.",
            "OBJECTIVE",
            "To investigate the association.",
        ),
        (
            "RESULTS A total of 50 patients were enrolled.",
            "RESULTS",
            "A total of 50 patients were enrolled.",
        ),
        (
            "CONCLUSIONS: These findings suggest a role.",
            "CONCLUSIONS",
            "These findings suggest a role.",
        ),
        (
            "MAIN OUTCOME MEASURES Weight gain at 6 months.",
            "MAIN OUTCOME MEASURES",
            "Weight gain at 6 months.",
        ),
        (
            "METHODS AND FINDINGS We enrolled 20 adults.",
            "METHODS AND FINDINGS",
            "We enrolled 20 adults.",
        ),
    ],
)
def test_a_heading_is_found_and_left_out(sentence: str, label: str, rest: str) -> None:
    assert section_label(sentence) == label
    assert strip_section_label(sentence) == rest


@pytest.mark.parametrize(
    "sentence",
    [
        "HIV infection is common in the region.",
        "MDSC expansion is driven by S100A9.",
        "A line scan MRI was applied.",
        "RESULTS",  # a heading alone is left as it is
        "IL-10 and TGF-beta were secreted.",
    ],
)
def test_an_acronym_or_plain_sentence_keeps_its_first_word(sentence: str) -> None:
    assert strip_section_label(sentence) == sentence
    assert section_label(sentence) is None


@pytest.mark.parametrize(
    ("sentence", "score"),
    [
        ("OBJECTIVE To investigate the association between X and Y.", -1.0),
        ("To determine whether aspirin lowers the risk of stroke.", -1.0),
        ("We aimed to assess the effect of statins.", -1.0),
        ("BACKGROUND Stroke is a leading cause of death.", -1.0),
        ("CONCLUSIONS Aspirin did not lower the risk.", 1.0),
        ("We found that X was associated with Y.", 1.0),
        ("Statins significantly reduced mortality (p < 0.01).", 1.0),
        ("The cohort was recruited in 2004.", 0.0),
        # an infinitive governing a main clause is not an aim
        ("To address this, the administration began multilateral negotiations.", 0.0),
    ],
)
def test_findings_are_told_from_aims(sentence: str, score: float) -> None:
    assert finding_score(sentence) == score


@pytest.mark.parametrize(
    ("query", "wants"),
    [
        ("Aspirin lowers the risk of stroke.", True),  # a claim
        ("Does aspirin lower the risk of stroke?", True),
        ("How does ragrelay make sure no job loops forever?", True),
        ("Why do jobs stop?", True),
        ("How many patients were enrolled?", False),
        ("Who discovered penicillin?", False),
        ("When was the trial run?", False),
    ],
)
def test_which_questions_ask_for_a_finding(query: str, wants: bool) -> None:
    assert asks_for_finding(query) is wants
