"""The offline provider: analysis, generation and evaluation without a model.

Not a mock: rule- and IR-based query analysis (rewrites, decomposition, routing), extractive
answers with citations, and lexical evaluation that can say ``revise``. Its quality is
measured by ``ragrelay eval`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from schemas import (
    AnalysisResult,
    AnalysisTask,
    Citation,
    EvaluationResult,
    EvaluationTask,
    GenerationResult,
    GenerationTask,
    Source,
    Usage,
)
from workers.email.reply import compose_reply
from workers.text.extractive import Extract, extract_answer
from workers.text.rewrite import rewrite_query
from workers.text.tokenize import stems

MODEL = "offline"
NO_DOCUMENTS = "No relevant documents were found for this question."

_PERSONAL = re.compile(r"\b(my|mine|me|i|i'm|i've|our|account|order|subscription)\b", re.I)
_RECENT = re.compile(r"\b(today|latest|current|news|now|this week|yesterday|recent)\b", re.I)

Triager = Callable[[Mapping[str, str]], tuple[str, float]]


class OfflineProvider:
    """A :class:`workers.ports.LLMProvider` that needs no network and no model weights."""

    name = "offline"

    def __init__(
        self,
        *,
        web_enabled: bool = False,
        triage: Triager | None = None,
        accept_faithfulness: float = 0.6,
        accept_relevance: float = 0.5,
        triage_model: Path | None = None,
    ) -> None:
        self.web_enabled = web_enabled
        self.triage = triage
        self.accept_faithfulness = accept_faithfulness
        self.accept_relevance = accept_relevance
        self.triage_model = triage_model

    # -- analysis ----------------------------------------------------------------------------
    def analyze(self, task: AnalysisTask) -> AnalysisResult:
        triage: str | None = None
        score: float | None = None
        if task.kind == "email_reply":
            if self.triage is not None and task.email is not None:
                triage, score = self.triage(task.email)
            else:
                triage = "needs_reply"
        rewrites = rewrite_query(
            task.query, feedback=task.feedback, previous=task.previous_rewrites
        )
        sources: list[Source] = ["internal"]
        if task.user_id and _PERSONAL.search(task.query):
            sources.append("user_context")
        if self.web_enabled and _RECENT.search(task.query):
            sources.append("web")
        return AnalysisResult(
            job_id=task.job_id,
            step_id=task.step_id,
            rewrites=rewrites,
            sources=sources,
            needs_retrieval=True,
            triage=triage,  # type: ignore[arg-type,unused-ignore]
            triage_score=score,
            model=MODEL,
            prompt_version="offline-analysis@v1",
            usage=Usage(),
        )

    # -- generation --------------------------------------------------------------------------
    def generate(self, task: GenerationTask) -> GenerationResult:
        if not task.context:
            return GenerationResult(
                job_id=task.job_id, step_id=task.step_id, answer=NO_DOCUMENTS, no_answer=True,
                model=MODEL, prompt_version="offline-generation@v1",
            )
        extract = extract_answer(task.query, task.context)
        if task.kind == "email_reply":
            return self._draft(task, extract)
        if not extract.answer:
            return GenerationResult(
                job_id=task.job_id, step_id=task.step_id, answer=NO_DOCUMENTS, no_answer=True,
                model=MODEL, prompt_version="offline-generation@v1",
            )
        citations = self._citations(task, extract)
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer=extract.answer,
            short_answer=extract.short_answer,
            citations=citations,
            model=MODEL,
            prompt_version="offline-generation@v1",
        )

    @staticmethod
    def _citations(task: GenerationTask, extract: Extract) -> list[Citation]:
        by_id = {c.chunk_id: c for c in task.context}
        citations: list[Citation] = []
        for chunk_id, quote in extract.quotes:
            chunk = by_id[chunk_id]
            if any(c.chunk_id == chunk_id for c in citations):
                continue
            citations.append(Citation(
                chunk_id=chunk_id, doc_id=chunk.doc_id, title=chunk.title, source=chunk.source,
                quote=quote, url=str(chunk.metadata["url"]) if "url" in chunk.metadata else None,
            ))
        return citations

    def _draft(self, task: GenerationTask, extract: Extract) -> GenerationResult:
        """An email reply: greeting, the grounded sentences, sign-off (nothing invented)."""
        body = compose_reply(task.query, extract.answer,
                             (task.email or {}).get("from_name") or None)
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer=body,
            short_answer=extract.answer or None,
            citations=self._citations(task, extract),
            no_answer=not extract.answer,
            model=MODEL,
            prompt_version="offline-email-draft@v1",
        )

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        text = email_body(task.answer) if task.kind == "email_reply" else task.answer
        answer_terms = set(stems(text))
        query_terms = set(stems(task.query))
        cited = {c.chunk_id for c in task.citations}
        cited_text = " ".join(c.text for c in task.context if c.chunk_id in cited)
        context_terms = set(stems(cited_text))
        faithfulness = len(answer_terms & context_terms) / len(answer_terms) if answer_terms else 0.0
        relevance = len(query_terms & answer_terms) / len(query_terms) if query_terms else 0.0
        all_context = set(stems(" ".join(c.text for c in task.context)))
        findable = query_terms & all_context
        completeness = len(findable & answer_terms) / len(findable) if findable else relevance
        scores = {
            "faithfulness": round(faithfulness, 4),
            "relevance": round(relevance, 4),
            "completeness": round(completeness, 4),
        }
        # An email's question is a whole message: a reply answers part of it.
        min_relevance = self.accept_relevance * (0.5 if task.kind == "email_reply" else 1.0)
        ok = (
            bool(task.citations)
            and faithfulness >= self.accept_faithfulness
            and relevance >= min_relevance
        )
        missing = sorted(query_terms - answer_terms)
        feedback = ""
        suggestion = None
        if not ok:
            parts = []
            if not task.citations:
                parts.append("the answer cites nothing")
            if faithfulness < self.accept_faithfulness:
                parts.append("the answer is not supported by its citations")
            if missing:
                parts.append("not covered: " + ", ".join(missing[:8]))
            feedback = "; ".join(parts)
            suggestion = " ".join(missing[:8]) or None
        return EvaluationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            scores=scores,
            verdict="accept" if ok else "revise",
            feedback=feedback,
            suggested_rewrite=suggestion,
            model=MODEL,
            prompt_version="offline-evaluation@v1",
        )


def email_body(draft: str) -> str:
    """The part of a draft that must be grounded: without greeting and sign-off lines."""
    lines = draft.strip().splitlines()
    if lines and lines[0].rstrip().endswith(","):
        lines = lines[1:]
    out = []
    for line in lines:
        if line.strip().lower().startswith(("best regards", "kind regards", "regards,")):
            break
        out.append(line)
    return "\n".join(out)
