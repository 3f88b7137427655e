"""The offline provider: analysis, generation and evaluation without a model.

Not a mock: rule- and IR-based query analysis (rewrites, decomposition, routing), extractive
answers with citations, and lexical evaluation that can say ``revise``. Its quality is
measured by ``ragrelay eval`` (see docs/benchmarks.md).

Retrieved text is data here too (docs/anthropic.md, "Guardrails"): the generator never
answers with a sentence the injection check flags, the results carry the same
``injection:<chunk_id>:<pattern>`` flags as the Claude provider's (generation ``notes``,
evaluation ``feedback``, analysis ``notes`` for emails, the ``guardrail.flagged`` log event),
and the evaluator never accepts an answer that reads as an instruction to the model.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bus import logging as blog
from bus.errors import ConfigError
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
    Verdict,
)
from workers.email.reply import compose_reply
from workers.guardrails import email_injection_flags, find_injections, injection_flags
from workers.ports import Embedder, NullLifecycle
from workers.text.answer_types import is_question
from workers.text.extractive import Extract, extract_answer, restates
from workers.text.rewrite import rewrite_query
from workers.text.sections import asks_for_finding, finding_score, strip_section_label
from workers.text.tokenize import sentences, stems

MODEL = "offline"
#: What generation v3 adds to a sentence stating a finding (and takes from one stating an aim
#: or background), in units of the extractor's scores; after the evaluator's NOT_A_FINDING
#: feedback, the larger weight. 2.5 was the best of 0-4 on the even SciFact train claims with
#: their gold abstract among 4 others (0.495 -> 0.66 rationale_hit), confirmed on the odd ones
#: (0.58 -> 0.685); the pipeline figures are in docs/benchmarks.md, "Answers that answer".
FINDINGS_WEIGHT = 2.5
FINDINGS_WEIGHT_REVISED = 5.0
#: The evaluator's feedback (v4) on an answer that states no finding.
NOT_A_FINDING = "states no finding"
NO_DOCUMENTS = "No relevant documents were found for this question."

log = blog.get_logger("ragrelay.offline")

_PERSONAL = re.compile(r"\b(my|mine|me|i|i'm|i've|our|account|order|subscription)\b", re.I)
_RECENT = re.compile(r"\b(today|latest|current|news|now|this week|yesterday|recent)\b", re.I)

Triager = Callable[[Mapping[str, str]], tuple[str, float]]

#: The offline counterparts of prompt versions: configurations of the rules, pinned like the
#: Claude prompts (``RAGRELAY_PROMPT_VERSIONS``, ``--prompt-version generation=2``) and
#: recorded on every result as ``offline-<stage>@v<N>``. The defaults are DEFAULT_VERSIONS.
OFFLINE_VERSIONS: dict[str, dict[int, str]] = {
    "analysis": {1: "keyword rewrites, decomposition, RM3 expansion on feedback"},
    "generation": {
        1: "the best-supported sentence, and a second one when nearly as good",
        2: "the best-supported sentence only",
        3: "v1, but a claim, yes/no or why/how question prefers a sentence stating a "
        "finding over one stating an aim or restating the question",
    },
    "evaluation": {
        1: "accept when cited, faithfulness >= 0.6 and relevance >= 0.5",
        2: "stricter: accept when cited, faithfulness >= 0.75 and relevance >= 0.67",
        3: "v1, but a question whose generator reports its confidence is judged by it: "
        "re-read once below 2/3, not revised for low word overlap",
        4: "v3, and a claim, yes/no or why/how question's answer that only restates it or "
        "states an aim or background is revised",
    },
}
#: v3 of evaluation: its re-read is what makes the loop beat a single pass on SQuAD
#: (docs/benchmarks-loop.md, "Session 7"); v1 is the loop before it.
#: generation v3 / evaluation v4: answers state findings (issue 22; docs/benchmarks.md,
#: "Answers that answer").
DEFAULT_VERSIONS: dict[str, int] = {"analysis": 1, "generation": 3, "evaluation": 4}
_STRICT_EVALUATION = (0.75, 0.67)
#: Prompts only the Claude provider has; pinning them does not concern the offline one.
_CLAUDE_ONLY = frozenset({"contextualize"})


def offline_versions(pins: Mapping[str, int] | None) -> dict[str, int]:
    """Every stage's configuration version: the default unless pinned; unknown pins are
    errors."""
    versions = dict(DEFAULT_VERSIONS)
    for name, version in (pins or {}).items():
        if name in _CLAUDE_ONLY:
            continue
        if name not in OFFLINE_VERSIONS:
            known = ", ".join(sorted(OFFLINE_VERSIONS))
            raise ConfigError(
                f"prompt version pin {name}={version}: the offline provider has "
                f"no {name!r} (known: {known})"
            )
        if version not in OFFLINE_VERSIONS[name]:
            have = ", ".join(f"v{v}" for v in sorted(OFFLINE_VERSIONS[name]))
            raise ConfigError(
                f"prompt version pin {name}={version}: the offline {name} has "
                f"no v{version} (have: {have})"
            )
        versions[name] = version
    return versions


class OfflineProvider(NullLifecycle):  # nothing to check at start, nothing to close
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
        versions: Mapping[str, int] | None = None,
        embedder: Callable[[], Embedder | None] | None = None,
        reread_below: float = 2 / 3,
    ) -> None:
        self.web_enabled = web_enabled
        self.triage = triage
        self.versions = offline_versions(versions)
        if self.versions["evaluation"] == 2:
            accept_faithfulness, accept_relevance = _STRICT_EVALUATION
        self.accept_faithfulness = accept_faithfulness
        self.accept_relevance = accept_relevance
        self.triage_model = triage_model
        self.reread_below = reread_below
        self._embedder = embedder

    @functools.cached_property
    def embedder(self) -> Embedder | None:
        """What re-ranks the best sentences (the store's MiniLM), loaded on first use."""
        return self._embedder() if self._embedder is not None else None

    def prompt_ref(self, stage: str) -> str:
        """What a result of ``stage`` records as its ``prompt_version``."""
        return f"offline-{stage}@v{self.versions.get(stage, 1)}"

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
        flags = email_injection_flags(task.email) if task.email else []
        _flagged("analysis", task.job_id, flags)
        return AnalysisResult(
            job_id=task.job_id,
            step_id=task.step_id,
            rewrites=rewrites,
            sources=sources,
            needs_retrieval=True,
            triage=triage,  # type: ignore[arg-type,unused-ignore]
            triage_score=score,
            notes=notes_of(flags),
            model=MODEL,
            prompt_version=self.prompt_ref("analysis"),
            usage=Usage(),
        )

    # -- generation --------------------------------------------------------------------------
    def generate(self, task: GenerationTask) -> GenerationResult:
        flags = injection_flags(task.context)
        if task.email:
            flags += email_injection_flags(task.email)
        _flagged("generation", task.job_id, flags)
        notes = notes_of(flags)
        if not task.context:
            return GenerationResult(
                job_id=task.job_id,
                step_id=task.step_id,
                answer=NO_DOCUMENTS,
                no_answer=True,
                notes=notes,
                model=MODEL,
                prompt_version=self.prompt_ref("generation"),
            )
        extract = extract_answer(
            task.query,
            task.context,
            embedder=self.embedder,
            reread=task.reread,
            skip=reads_as_instruction,
            findings=(weight := self._findings_weight(task)),
            no_restating=bool(weight) and is_question(task.query),
        )
        if self.versions["generation"] == 2 and len(extract.quotes) > 1:
            first = extract.quotes[0]
            extract = dataclasses.replace(extract, answer=first[1], quotes=[first])
        if task.kind == "email_reply":
            return self._draft(task, extract, notes)
        if not extract.answer:
            return GenerationResult(
                job_id=task.job_id,
                step_id=task.step_id,
                answer=NO_DOCUMENTS,
                no_answer=True,
                notes=notes,
                model=MODEL,
                prompt_version=self.prompt_ref("generation"),
            )
        citations = self._citations(task, extract)
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer=extract.answer,
            short_answer=extract.short_answer,
            citations=citations,
            notes=notes,
            model=MODEL,
            prompt_version=self.prompt_ref("generation"),
            confidence=confidence(extract.margin),
        )

    def _findings_weight(self, task: GenerationTask) -> float:
        """How much a sentence stating a finding is preferred (v3, for a question asking for
        one); more after the evaluator sent back an aim or a restatement."""
        if self.versions["generation"] < 3 or task.kind != "question":
            return 0.0
        if not asks_for_finding(task.query):
            return 0.0
        if task.feedback and NOT_A_FINDING in task.feedback:
            return FINDINGS_WEIGHT_REVISED
        return FINDINGS_WEIGHT

    @staticmethod
    def _citations(task: GenerationTask, extract: Extract) -> list[Citation]:
        by_id = {c.chunk_id: c for c in task.context}
        citations: list[Citation] = []
        for chunk_id, quote in extract.quotes:
            chunk = by_id[chunk_id]
            if any(c.chunk_id == chunk_id for c in citations):
                continue
            citations.append(Citation.of(chunk, quote=quote))
        return citations

    def _draft(self, task: GenerationTask, extract: Extract, notes: str) -> GenerationResult:
        """An email reply: greeting, the grounded sentences, sign-off (nothing invented)."""
        body = compose_reply(
            task.query, extract.answer, (task.email or {}).get("from_name") or None
        )
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer=body,
            short_answer=extract.answer or None,
            citations=self._citations(task, extract),
            no_answer=not extract.answer,
            notes=notes,
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
        faithfulness = (
            len(answer_terms & context_terms) / len(answer_terms) if answer_terms else 0.0
        )
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
        # A claim ("X causes Y.") asks for evidence, not for an answer repeating its words:
        # overlap with its terms checks nothing the retrieval did not already rank by, and
        # revising on it doubled the work on SciFact claims for no measurable gain
        # (docs/benchmarks-loop.md). Only a missing citation or an unsupported answer counts.
        judged = task.kind != "question" or is_question(task.query)
        # v3: the generator's confidence judges a question's answer better than word
        # overlap does (docs/benchmarks-loop.md, "Session 5" and "Session 7")
        by_confidence = (
            self.versions["evaluation"] >= 3
            and task.confidence is not None
            and task.kind == "question"
            and judged
        )
        ok = (
            bool(task.citations)
            and faithfulness >= self.accept_faithfulness
            and (relevance >= min_relevance or not judged or by_confidence)
        )
        missing = sorted(query_terms - answer_terms)
        feedback = ""
        suggestion = None
        verdict: Verdict = "accept" if ok else "revise"
        instruction = find_injections(text)
        if (
            ok
            and self.versions["evaluation"] >= 4
            and task.kind == "question"
            and not task.is_last_iteration
            and asks_for_finding(task.query)
            and (why := states_no_finding(task.query, text))
        ):
            # An aim or a restatement is not an answer, however well it is supported: sent
            # back, and scored lower than an answer that states a finding.
            verdict = "revise"
            scores = {k: round(v / 2, 4) for k, v in scores.items()}
            feedback = f"[{NOT_A_FINDING}: the answer {why}; quote a sentence stating a result]"
        if (
            ok
            and by_confidence
            and task.confidence is not None
            and task.iteration == 1
            and not task.is_last_iteration
            and task.confidence < self.reread_below
        ):
            verdict = "reread"
            feedback = f"close call (confidence {task.confidence:.2f}): read the same context again"
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
        if instruction:
            # An instruction to the model is not an answer, however well its words match:
            # scored 0 so it is never the best answer kept when the budget runs out.
            verdict = "revise"
            scores = dict.fromkeys(scores, 0.0)
            feedback = (
                "[guardrail: the answer reads as an instruction to the model ("
                + ", ".join(instruction)
                + "); answer from other sentences] "
                + feedback
            ).strip()
        flags = injection_flags(task.context)
        if flags:
            # bracketed like the Claude provider's; the offline analysis leaves brackets out of
            # its feedback rewrite (workers/text/rewrite.py)
            feedback = (feedback + " [guardrail flags: " + ", ".join(flags) + "]").strip()
        _flagged(
            "evaluation",
            task.job_id,
            [*(f"answer_reads_as_instruction:{n}" for n in instruction), *flags],
        )
        return EvaluationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            scores=scores,
            verdict=verdict,
            feedback=feedback,
            suggested_rewrite=suggestion,
            model=MODEL,
            prompt_version=self.prompt_ref("evaluation"),
        )


def states_no_finding(query: str, answer: str) -> str | None:
    """Why the answer's first sentence states no finding (it restates the question, or
    states an aim, background or method), or None when it may."""
    first = strip_section_label((sentences(answer) or [""])[0])
    if is_question(query) and restates(set(stems(query)), stems(first)):
        return "only restates the question"
    if finding_score(first) < 0:
        return "states an aim, background or method"
    return None


def reads_as_instruction(sentence: str) -> bool:
    """Whether the injection check flags ``sentence``: the generator never answers with it."""
    return bool(find_injections(sentence))


def notes_of(flags: Sequence[str]) -> str:
    """Flags as the Claude provider writes them into ``notes``: ``[flag] [flag]``."""
    return " ".join(f"[{f}]" for f in flags)


def _flagged(stage: str, job_id: str, flags: Sequence[str]) -> None:
    if flags:
        log.warning("guardrail.flagged", stage=stage, job_id=job_id, flags=list(flags))


def confidence(margin: float | None) -> float:
    """The extractor's margin (best sentence's score - the runner-up's) as a 0-1
    confidence: m / (1 + m), so 1/2 at a margin of 1 and 2/3 at 2; 1.0 with no runner-up."""
    if margin is None:
        return 1.0
    margin = max(0.0, margin)
    return round(margin / (1.0 + margin), 4)


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
