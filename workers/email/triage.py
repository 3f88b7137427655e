"""Email triage: ``spam`` / ``needs_reply`` / ``no_reply``, offline.

Two layers, in this order:
1. **Rules** that are safe everywhere: auto-generated mail (``Auto-Submitted``, ``X-Autoreply``,
   ``Precedence: auto_reply/junk``, mailer-daemon/postmaster senders) is never answered
   (mail loops). ``X-Spam-*`` headers are *not* read here (a sender can forge them): the
   ingress passes a configured filter's verdict as ``filter_*`` keys (``combine.py``).
   Mailing-list headers (``List-Id``, ``Precedence: bulk|list``) are *features* of the
   classifier, not overrides: in the shared inbox 457 of the 524 messages a list member
   answered carry them, so a "list mail → no reply" rule would bury most real questions.
2. **The classifier**: TF-IDF over subject/body/header features in two blocks (text and
   meta, each L2-normalised on its own; see ``workers.email.features``) + multinomial
   logistic regression, stored as JSON (vocabulary, idf, block sizes, coefficients) and
   applied with numpy — no pickle, no scikit-learn needed at prediction time. Spam is only
   returned when its probability clears the model's ``spam_threshold`` (chosen at training
   for precision on *grouped* out-of-fold probabilities, ``calibrate.py``), combined with
   the mail server's filter when one is configured (``combine.py``); uncertain mail is
   ``review``, never spam.

Without a trained model, ``classify`` falls back to keyword rules and says so: the
decision's ``source`` is ``"fallback-rules"`` and the score is capped at 0.5.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bus.errors import ConfigError
from workers.email.combine import spam_verdict
from workers.email.features import email_features

LABELS: tuple[str, ...] = ("spam", "needs_reply", "no_reply")
# what a decision may also say: uncertain mail, drafted and flagged for a person, never spam
REVIEW = "review"
DECISIONS: tuple[str, ...] = (*LABELS, REVIEW)
MODEL_FORMAT = "ragrelay-triage/2"
READABLE_FORMATS = ("ragrelay-triage/1", MODEL_FORMAT)  # /1: one block, no "blocks" key
MODEL_FILENAME = "triage.json"
FALLBACK_MAX_SCORE = 0.5


def default_model_path(data_dir: Path) -> Path:
    """Where the shipped model lives: ``<data_dir>/models/triage.json``."""
    return data_dir / "models" / MODEL_FILENAME


@dataclass(frozen=True)
class TriageDecision:
    label: str
    score: float
    source: str  # "model" | "rule:<name>" | "fallback-rules"
    probabilities: Mapping[str, float]

    def note(self) -> str:
        probs = ", ".join(f"{k}={v:.2f}" for k, v in sorted(self.probabilities.items()))
        return f"triage {self.label} ({self.score:.2f}) by {self.source}" + (
            f" [{probs}]" if probs else ""
        )


@dataclass(frozen=True)
class TriageModel:
    classes: tuple[str, ...]
    vocabulary: Mapping[str, int]
    idf: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    spam_threshold: float
    meta: Mapping[str, Any]
    # sizes of the consecutive feature blocks, each L2-normalised on its own; () = one block
    blocks: tuple[int, ...] = ()
    # no_reply when P(no_reply) / (P(no_reply) + P(needs_reply)) reaches it (chosen at training)
    no_reply_threshold: float = 0.5
    # P(spam) from which the model is no longer sure the mail is ham (None: = spam_threshold)
    review_threshold: float | None = None

    def probabilities(self, email: Mapping[str, str]) -> dict[str, float]:
        counts = Counter(f for f in email_features(email) if f in self.vocabulary)
        # sparse on purpose: only the message's own features are touched (no dense vector
        # the size of the vocabulary, no BLAS call that contends for cores under load)
        index = np.fromiter((self.vocabulary[f] for f in counts), dtype=np.int64, count=len(counts))
        values = (
            np.fromiter(
                (1.0 + math.log(c) for c in counts.values()), dtype=np.float64, count=len(counts)
            )
            * self.idf[index]
        )
        ends = np.cumsum(self.blocks or (len(self.idf),))
        block = np.searchsorted(ends, index, side="right")
        for b in np.unique(block):
            members = block == b
            norm = math.sqrt(float((values[members] ** 2).sum()))
            if norm > 0:
                values[members] /= norm
        logits = (self.coef[:, index] * values).sum(axis=1) + self.intercept
        logits -= logits.max()
        exp = np.exp(logits)
        probs = exp / exp.sum()
        return {label: float(p) for label, p in zip(self.classes, probs, strict=True)}

    def decide(self, email: Mapping[str, str]) -> TriageDecision:
        probs = self.probabilities(email)
        review = self.spam_threshold if self.review_threshold is None else self.review_threshold
        verdict, by = spam_verdict(probs.get("spam", 0.0), self.spam_threshold, review, email)
        if verdict == "spam":
            return TriageDecision("spam", probs.get("spam", 0.0), _source(by), probs)
        if verdict == REVIEW:
            return TriageDecision(REVIEW, 1.0 - probs.get("spam", 0.0), _source(by), probs)
        label, score = decide_from_probabilities(probs, 2.0, self.no_reply_threshold)
        return TriageDecision(label, score, "model", probs)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": MODEL_FORMAT,
                "classes": list(self.classes),
                "vocabulary": dict(self.vocabulary),
                "idf": [round(float(v), 6) for v in self.idf],
                "coef": [[round(float(v), 6) for v in row] for row in self.coef],
                "intercept": [round(float(v), 6) for v in self.intercept],
                "spam_threshold": self.spam_threshold,
                "no_reply_threshold": self.no_reply_threshold,
                **(
                    {"review_threshold": self.review_threshold}
                    if self.review_threshold is not None
                    else {}
                ),
                "blocks": list(self.blocks) or [len(self.idf)],
                "meta": dict(self.meta),
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> TriageModel:
        try:
            data = json.loads(raw)
            if data.get("format") not in READABLE_FORMATS:
                raise ValueError(f"unknown model format {data.get('format')!r}")
            model = cls(
                classes=tuple(data["classes"]),
                vocabulary={str(k): int(v) for k, v in data["vocabulary"].items()},
                idf=np.asarray(data["idf"], dtype=np.float64),
                coef=np.asarray(data["coef"], dtype=np.float64),
                intercept=np.asarray(data["intercept"], dtype=np.float64),
                spam_threshold=float(data["spam_threshold"]),
                no_reply_threshold=float(data.get("no_reply_threshold", 0.5)),
                review_threshold=(
                    float(data["review_threshold"])
                    if data.get("review_threshold") is not None
                    else None
                ),
                meta=dict(data.get("meta", {})),
                blocks=tuple(int(b) for b in data.get("blocks", ())),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"invalid triage model: {exc}") from exc
        if (
            set(model.classes) != set(LABELS)
            or model.coef.shape
            != (
                len(model.classes),
                len(model.idf),
            )
            or (model.blocks and (sum(model.blocks) != len(model.idf) or min(model.blocks) < 0))
        ):
            raise ConfigError("invalid triage model: classes or shapes do not match")
        return model

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)


def _source(by: str) -> str:
    return "model" if by == "model" else f"model+filter:{by}" if "filter" in by else f"model:{by}"


def decide_from_probabilities(
    probs: Mapping[str, float], spam_threshold: float, no_reply_threshold: float = 0.5
) -> tuple[str, float]:
    """Spam only above the threshold (never bury a customer); otherwise ``no_reply`` when
    its share of the non-spam probability reaches ``no_reply_threshold``, else
    ``needs_reply``."""
    if probs.get("spam", 0.0) >= spam_threshold:
        return "spam", probs["spam"]
    no_reply, needs_reply = probs.get("no_reply", 0.0), probs.get("needs_reply", 0.0)
    share = no_reply / (no_reply + needs_reply) if no_reply + needs_reply > 0 else 0.0
    label = "no_reply" if share >= no_reply_threshold else "needs_reply"
    return label, probs.get(label, 0.0)


# --- rules -----------------------------------------------------------------------------

_AUTO_SENDER = re.compile(r"\b(?:mailer-daemon|postmaster|no-?reply|do-?not-?reply)@", re.I)
_SPAM_WORDS = re.compile(
    r"\b(?:viagra|casino|lottery|winner|free money|no investment|lowest (?:price|rates?)|"
    r"guaranteed|limited time|act now|click here|unsubscribe|remove me|adult|mortgage|"
    r"penis|enlargement|weight loss|lose \d+ ?lbs|work from home|million dollars|"
    r"bank account|100% free|risk[- ]free|cheap)\b",
    re.I,
)
_QUESTION = re.compile(
    r"\?|\b(?:anyone know|does anyone|how (?:do|can|to)|can (?:you|someone|anyone)|"
    r"could (?:you|someone)|please (?:help|advise|let me know)|any (?:idea|ideas|suggestions))\b",
    re.I,
)


def rule_decision(email: Mapping[str, str]) -> TriageDecision | None:
    """Rules that hold in every inbox; None when none fires."""
    auto = (email.get("auto_submitted") or "").strip().lower()
    precedence = (email.get("precedence") or "").strip().lower()
    sender = email.get("from", "") or ""
    if (auto and auto != "no") or (email.get("x_autoreply") or "").strip():
        return TriageDecision("no_reply", 1.0, "rule:auto-submitted", {})
    if precedence in {"auto_reply", "junk"}:
        return TriageDecision("no_reply", 1.0, f"rule:precedence-{precedence}", {})
    if _AUTO_SENDER.search(sender):
        return TriageDecision("no_reply", 1.0, "rule:automatic-sender", {})
    return None


def fallback_decision(email: Mapping[str, str]) -> TriageDecision:
    """No trained model: the configured filter's verdict when there is one, else keyword
    rules, honest about it (score ≤ 0.5)."""
    verdict, _by = spam_verdict(None, 1.0, 1.0, email)
    if verdict == "spam":
        return TriageDecision("spam", FALLBACK_MAX_SCORE, "fallback-rules+filter", {})
    text = f"{email.get('subject', '')}\n{email.get('body', '')}"
    spam_hits = len(_SPAM_WORDS.findall(text))
    listy = bool((email.get("list_id") or email.get("x_mailing_list") or "").strip())
    if spam_hits >= 3 and not listy:  # keywords alone are not confidence: a person looks
        return TriageDecision(REVIEW, FALLBACK_MAX_SCORE, "fallback-rules", {})
    if _QUESTION.search(text):
        return TriageDecision("needs_reply", FALLBACK_MAX_SCORE, "fallback-rules", {})
    return TriageDecision("no_reply", FALLBACK_MAX_SCORE * 0.8, "fallback-rules", {})


# --- loading with a cache ----------------------------------------------------------------

_cache: dict[Path, tuple[tuple[int, int, int], TriageModel]] = {}
_cache_lock = threading.Lock()


def load_model(path: Path) -> TriageModel | None:
    """The model at ``path`` (cached; reloaded when the file changes), or None if absent."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read triage model {path}: {exc.strerror}") from exc
    signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
    try:
        model = TriageModel.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read triage model {path}: {exc.strerror}") from exc
    with _cache_lock:
        _cache[path] = (signature, model)
    return model


def classify_detailed(email: Mapping[str, str], model_path: Path | None) -> TriageDecision:
    """Rules, then the model at ``model_path``, else the keyword fallback."""
    ruled = rule_decision(email)
    if ruled is not None:
        return ruled
    model = load_model(model_path) if model_path is not None else None
    if model is None:
        return fallback_decision(email)
    return model.decide(email)


def classify(email: Mapping[str, str], model_path: Path | None) -> tuple[str, float]:
    """``(label, score)`` for one email; the analysis worker's entry point.

    ``email`` is ``AnalysisTask.email``; ``model_path`` is usually
    ``default_model_path(settings.data_dir)``. A missing model file means the keyword
    fallback (score ≤ 0.5); use ``classify_detailed`` to see which layer decided.
    """
    decision = classify_detailed(email, model_path)
    return decision.label, decision.score


__all__ = [
    "DECISIONS",
    "LABELS",
    "MODEL_FILENAME",
    "REVIEW",
    "TriageDecision",
    "TriageModel",
    "classify",
    "classify_detailed",
    "decide_from_probabilities",
    "default_model_path",
    "fallback_decision",
    "load_model",
    "rule_decision",
]
