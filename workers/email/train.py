"""Training the triage classifier from labelled emails (scikit-learn at training time only).

``fit`` takes ``(email mapping, label)`` pairs — the same flat mapping the analysis worker
receives — and returns a ``TriageModel`` (JSON-serialisable). ``cross_validate`` reports
honest k-fold figures: every prediction comes from a model that never saw that message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# scikit-learn and scipy ship no type information usable here; these names are all we use.
from scipy.sparse import hstack  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

from bus.errors import UsageError
from workers.email.calibrate import choose_thresholds, group_folds, mail_group
from workers.email.features import BLOCK_ANALYZERS, email_features
from workers.email.triage import LABELS, REVIEW, TriageModel, decide_from_probabilities

LABEL_ALIASES: Mapping[str, str] = {
    "spam": "spam",
    "needs_reply": "needs_reply",
    "no_reply": "no_reply",
    "ham_other": "no_reply",
    "ham": "no_reply",
}
SPAM_PRECISION_TARGET = 0.99
DEFAULT_C = 4.0

Example = tuple[Mapping[str, str], str]


def normalise_label(label: str) -> str:
    try:
        return LABEL_ALIASES[label.strip().lower()]
    except KeyError as exc:
        raise UsageError(
            f"unknown triage label {label!r}; expected one of {sorted(LABEL_ALIASES)}"
        ) from exc


Vectorizers = tuple[TfidfVectorizer, ...]


def _vectorize(
    vectorizers: Vectorizers, features: Sequence[list[str]], *, fit: bool = False
) -> Any:
    """One TF-IDF block per ``BLOCKS`` entry, each L2-normalised on its own, side by side."""
    parts = [v.fit_transform(features) if fit else v.transform(features) for v in vectorizers]
    return hstack(parts).tocsr()


def _fit_core(
    features: Sequence[list[str]], labels: Sequence[str], c: float
) -> tuple[Vectorizers, LogisticRegression]:
    min_df = 2 if len(features) >= 50 else 1
    vectorizers = tuple(
        TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=min_df)
        for analyzer in BLOCK_ANALYZERS
    )
    matrix = _vectorize(vectorizers, features, fit=True)
    classifier = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    classifier.fit(matrix, list(labels))
    return vectorizers, classifier


def _predict_proba(
    vectorizers: Vectorizers, classifier: LogisticRegression, features: Sequence[list[str]]
) -> Any:
    return classifier.predict_proba(_vectorize(vectorizers, features))


def _to_model(
    vectorizers: Vectorizers,
    classifier: LogisticRegression,
    spam_threshold: float,
    meta: Mapping[str, object],
    no_reply_threshold: float = 0.5,
) -> TriageModel:
    classes = tuple(str(c) for c in classifier.classes_)
    vocabulary: dict[str, int] = {}
    offset = 0
    for vectorizer in vectorizers:
        vocabulary.update({str(k): offset + int(v) for k, v in vectorizer.vocabulary_.items()})
        offset += len(vectorizer.idf_)
    return TriageModel(
        classes=classes,
        vocabulary=vocabulary,
        idf=np.concatenate([np.asarray(v.idf_, dtype=np.float64) for v in vectorizers]),
        coef=np.asarray(classifier.coef_, dtype=np.float64),
        intercept=np.asarray(classifier.intercept_, dtype=np.float64),
        spam_threshold=spam_threshold,
        meta=dict(meta),
        blocks=tuple(len(v.idf_) for v in vectorizers),
        no_reply_threshold=no_reply_threshold,
    )


def _check(examples: Sequence[Example]) -> tuple[list[list[str]], list[str]]:
    labels = [normalise_label(label) for _, label in examples]
    missing = set(LABELS) - set(labels)
    if missing:
        raise UsageError(f"training data has no examples of {sorted(missing)}")
    return [email_features(email) for email, _ in examples], labels


def _oof_probabilities(
    features: Sequence[list[str]], labels: Sequence[str], folds: int, c: float, seed: int
) -> list[dict[str, float]]:
    """Out-of-fold class probabilities for every example."""
    out: list[dict[str, float]] = [{} for _ in labels]
    y = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y):
        vecs, clf = _fit_core([features[i] for i in train_idx], [labels[i] for i in train_idx], c)
        probs = _predict_proba(vecs, clf, [features[i] for i in test_idx])
        for row, index in zip(probs, test_idx, strict=True):
            out[index] = {str(k): float(p) for k, p in zip(clf.classes_, row, strict=True)}
    return out


def choose_spam_threshold(
    probabilities: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    target: float = SPAM_PRECISION_TARGET,
) -> float:
    """The lowest threshold ≥ 0.35 whose out-of-fold spam precision meets ``target``."""
    for step in range(25):  # 0.35, 0.375, ... 0.95 (exact decimals, no float drift)
        threshold = round(0.35 + 0.025 * step, 3)
        predicted = [p.get("spam", 0.0) >= threshold for p in probabilities]
        hits = sum(1 for flag, y in zip(predicted, labels, strict=True) if flag and y == "spam")
        flagged = sum(predicted)
        if flagged == 0 or hits / flagged >= target:
            return threshold
    return 0.95


NO_REPLY_GRID = tuple(round(0.3 + 0.05 * step, 2) for step in range(9))  # 0.30 … 0.70


def choose_no_reply_threshold(
    probabilities: Sequence[Mapping[str, float]], labels: Sequence[str], spam_threshold: float
) -> float:
    """The no_reply/needs_reply cut with the best out-of-fold macro-F1 (ties: nearest 0.5).
    Only shifts the boundary between the two ham classes; spam decisions are unchanged."""
    best, best_key = 0.5, (-1.0, 0.0)
    for threshold in NO_REPLY_GRID:
        predicted = [
            decide_from_probabilities(p, spam_threshold, threshold)[0] for p in probabilities
        ]
        key = (round(metrics(labels, predicted)["triage_macro_f1"], 6), -abs(threshold - 0.5))
        if key > best_key:
            best, best_key = threshold, key
    return best


def grouped_oof_probabilities(
    features: Sequence[list[str]],
    labels: Sequence[str],
    groups: Sequence[str],
    folds: int,
    c: float,
) -> list[dict[str, float]]:
    """Out-of-fold probabilities where no source group (``calibrate.mail_group``) is on both
    sides of a fold: each is a prediction about mail from a list/sender never seen."""
    out: list[dict[str, float]] = [{} for _ in labels]
    for test_idx in group_folds(groups, folds):
        test = set(test_idx)
        train_idx = [i for i in range(len(labels)) if i not in test]
        vecs, clf = _fit_core([features[i] for i in train_idx], [labels[i] for i in train_idx], c)
        probs = _predict_proba(vecs, clf, [features[i] for i in test_idx])
        for row, index in zip(probs, test_idx, strict=True):
            row_map = {str(k): float(p) for k, p in zip(clf.classes_, row, strict=True)}
            out[index] = {label: row_map.get(label, 0.0) for label in LABELS}
    return out


NEEDS_REPLY_RECALL_TARGET = 0.97
RECALL_NO_REPLY_GRID = tuple(round(0.5 + 0.05 * step, 2) for step in range(11))  # 0.50 … 1.00


def choose_no_reply_for_recall(
    probabilities: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    spam_threshold: float,
    target: float = NEEDS_REPLY_RECALL_TARGET,
) -> float:
    """The lowest no_reply cut whose out-of-fold needs_reply recall (spam decisions as at
    ``spam_threshold``) reaches ``target`` — a real question must not be filed away; 1.0
    (never no_reply from the model) when no cut does."""
    needs = [i for i, y in enumerate(labels) if y == "needs_reply"]
    if not needs:
        return 0.5
    for threshold in RECALL_NO_REPLY_GRID:
        kept = sum(
            1
            for i in needs
            if decide_from_probabilities(probabilities[i], spam_threshold, threshold)[0]
            == "needs_reply"
        )
        if kept / len(needs) >= target:
            return threshold
    return 1.0


def fit(
    examples: Sequence[Example],
    *,
    c: float = DEFAULT_C,
    folds: int = 5,
    seed: int = 0,
    grouped: bool = True,
) -> TriageModel:
    """Train on every example; the thresholds come from an inner k-fold's out-of-fold
    probabilities (never from the examples' own fitted scores). ``grouped`` (default): the
    inner folds keep each source group whole (``calibrate.py``), so the spam threshold is
    the one that holds on mail from lists and senders the model has not seen, and a review
    band sits below it; otherwise a random stratified k-fold, no review band."""
    features, labels = _check(examples)
    smallest = min(labels.count(label) for label in LABELS)
    inner = max(2, min(folds, smallest))
    groups = [mail_group(email) for email, _ in examples]
    review: float | None = None
    # grouped needs every class to come from ≥ 2 sources (else a fold has none of it)
    spread = min(len({g for g, y in zip(groups, labels, strict=True) if y == k}) for k in LABELS)
    if grouped and len(set(groups)) >= inner and spread >= 2:
        oof = grouped_oof_probabilities(features, labels, groups, inner, c)
        threshold, review = choose_thresholds(oof, labels, SPAM_PRECISION_TARGET)
        # the target is needs_reply recall (no_reply is not one): the cut that keeps
        # it on mail from unseen sources (review mail is drafted, so it counts as kept)
        no_reply_threshold = choose_no_reply_for_recall(oof, labels, threshold)
    else:
        oof = _oof_probabilities(features, labels, inner, c, seed)
        threshold = choose_spam_threshold(oof, labels)
        no_reply_threshold = choose_no_reply_threshold(oof, labels, threshold)
    vectorizers, classifier = _fit_core(features, labels, c)
    meta = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "examples": len(labels),
        "per_label": {label: labels.count(label) for label in LABELS},
        "C": c,
        "features": "workers.email.features.email_features",
        "blocks": "text|meta, each TF-IDF + L2 on its own",
        "calibration": "grouped" if review is not None else "stratified",
    }
    model = _to_model(vectorizers, classifier, threshold, meta, no_reply_threshold)
    return dataclasses.replace(model, review_threshold=review)


def metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """The eval's triage figures from labels and predictions (both normalised). A ``review``
    prediction is not spam; it is drafted and flagged, so for the ham classes it counts as
    ``needs_reply`` (the reply is not lost); ``review_share`` says how much went there."""
    review_share = (sum(1 for p in predicted if p == REVIEW) / len(predicted)) if predicted else 0.0
    predicted = ["needs_reply" if p == REVIEW else p for p in predicted]
    labels = list(LABELS)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    by = {label: index for index, label in enumerate(labels)}
    return {
        "triage_macro_f1": float(
            f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "triage_accuracy": float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))
        if truth
        else 0.0,
        "spam_precision": float(precision[by["spam"]]),
        "spam_recall": float(recall[by["spam"]]),
        "needs_reply_precision": float(precision[by["needs_reply"]]),
        "needs_reply_recall": float(recall[by["needs_reply"]]),
        "no_reply_f1": float(f1[by["no_reply"]]),
        "needs_reply_f1": float(f1[by["needs_reply"]]),
        "spam_f1": float(f1[by["spam"]]),
        "review_share": review_share,
    }


def cross_validate(
    examples: Sequence[Example], *, folds: int = 5, c: float = DEFAULT_C, seed: int = 0
) -> dict[str, float]:
    """k-fold figures: each message is predicted by a model (threshold included) trained
    without it."""
    _features, labels = _check(examples)
    y = np.asarray(labels)
    predicted: list[str] = ["" for _ in labels]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y):
        model = fit([examples[i] for i in train_idx], c=c, folds=folds, seed=seed)
        for index in test_idx:
            predicted[index] = model.decide(examples[index][0]).label
    result = metrics(labels, predicted)
    result["folds"] = float(folds)
    result["messages"] = float(len(labels))
    return result


__all__ = [
    "LABEL_ALIASES",
    "choose_no_reply_for_recall",
    "choose_no_reply_threshold",
    "choose_spam_threshold",
    "cross_validate",
    "fit",
    "grouped_oof_probabilities",
    "metrics",
    "normalise_label",
]
