"""The offline provider's versions: pinned like prompts, recorded on results, validated."""

from __future__ import annotations

import pytest

from bus.errors import ConfigError
from schemas import Chunk, Citation, EvaluationTask, GenerationTask
from workers.providers.offline import OfflineProvider, offline_versions
from workers.text.tokenize import sentences

NILE = Chunk(
    chunk_id="nile#0",
    doc_id="nile",
    title="Nile",
    text=(
        "The Nile is the longest river in Africa and flows north into the Mediterranean. "
        "The Nile river in Africa is about 6,650 km long from its sources to the sea. "
        "Its basin covers eleven countries."
    ),
)


def generation(versions: dict[str, int] | None = None) -> tuple[str, str, int]:
    task = GenerationTask(
        job_id="j",
        step_id="j/1/generation/0",
        tenant="t",
        query="How long is the Nile river in Africa?",
        context=[NILE],
    )
    r = OfflineProvider(versions=versions).generate(task)
    return r.answer, r.prompt_version or "", len(r.citations)


def test_defaults_are_recorded_and_evaluation_reads_close_calls_again() -> None:
    assert offline_versions(None) == {"analysis": 1, "generation": 3, "evaluation": 4}
    answer, version, _ = generation()
    assert version == "offline-generation@v3" and answer


def test_generation_v2_answers_with_the_best_sentence_only() -> None:
    v1_answer, _, _ = generation()
    v2_answer, version, cited = generation({"generation": 2})
    assert version == "offline-generation@v2"
    assert len(sentences(v2_answer)) == 1 and cited == 1
    assert v2_answer == sentences(v1_answer)[0]


def test_evaluation_v2_is_stricter() -> None:
    # 7 of the answer's 9 content stems are in the cited text: faithfulness ~0.78 passes v1's
    # 0.6; relevance 2/3 passes v1's 0.5 and v2's 0.67 only just; v2 needs 0.75 faithfulness.
    answer = "The Nile river is long and flows north, said Zorblat of Quuxville."
    task = EvaluationTask(
        job_id="j",
        step_id="j/1/evaluation/0",
        tenant="t",
        query="How long is the Nile?",
        answer=answer,
        context=[NILE],
        citations=[Citation(chunk_id="nile#0", doc_id="nile", quote="The Nile")],
    )
    v1 = OfflineProvider().evaluate(task)
    v2 = OfflineProvider(versions={"evaluation": 2}).evaluate(task)
    assert v1.scores == v2.scores
    assert 0.6 <= v1.scores["faithfulness"] < 0.75
    assert (v1.verdict, v2.verdict) == ("accept", "revise")
    assert v2.prompt_version == "offline-evaluation@v2"


def test_pins_are_checked_and_claude_only_prompts_ignored() -> None:
    assert offline_versions({"contextualize": 3})["generation"] == 3
    with pytest.raises(ConfigError, match="offline generation has no v7 \\(have: v1, v2, v3\\)"):
        OfflineProvider(versions={"generation": 7})
    with pytest.raises(ConfigError, match="no 'retrieval'"):
        OfflineProvider(versions={"retrieval": 1})
