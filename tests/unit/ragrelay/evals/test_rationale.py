"""The rationale check of `ragrelay eval rationale` (issue 22)."""

from __future__ import annotations

from ragrelay.evals.rationale import rationale_hit

ABSTRACTS = {
    "7": (
        "t",
        [
            "OBJECTIVE To test X.",
            "RESULTS X lowered Y by 20%.",
            "Preterm infants showed higher values (1.4 +/-",
            "0.24 versus 1.15 +/-",
            "0.09, p = 0.016).",
        ],
    )
}


def test_the_first_sentence_must_be_a_gold_rationale_of_a_gold_document() -> None:
    gold = {"7": frozenset({1})}
    assert rationale_hit("X  lowered Y\nby 20%.", gold, ABSTRACTS)  # whitespace
    assert rationale_hit("RESULTS X lowered Y by 20%.", gold, ABSTRACTS)  # label or not
    assert not rationale_hit("To test X.", gold, ABSTRACTS)  # a sentence, not the rationale
    assert not rationale_hit("X lowered Y by 20%.", {"8": frozenset({1})}, ABSTRACTS)
    assert not rationale_hit("", gold, ABSTRACTS)


def test_a_sentence_the_splitter_read_as_one_counts_when_it_holds_the_rationale() -> None:
    joined = "Preterm infants showed higher values (1.4 +/- 0.24 versus 1.15 +/- 0.09, p = 0.016)."
    assert rationale_hit(joined, {"7": frozenset({3})}, ABSTRACTS)
    assert not rationale_hit(joined, {"7": frozenset({1})}, ABSTRACTS)
