"""Pure metric functions: BEIR/trec_eval ranking metrics and the SQuAD answer checks."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> graded relevance


def collapse_to_documents(doc_ids: Iterable[str]) -> list[str]:
    """Chunks' document ids, best first, collapsed to each document's first (best) place."""
    return list(dict.fromkeys(doc_ids))


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k as trec_eval's ``ndcg_cut`` (what BEIR reports): linear gains, log2 discount,
    the ideal ranking built from every judged relevant document."""
    dcg = sum(relevance.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, r in relevance.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranking[:k])) / len(relevant)


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


# --- SQuAD (as the official v1.1 evaluation script normalises) ---------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles (a, an, the), squeeze white space."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_hit(candidate: str, gold: Sequence[str]) -> bool:
    """True when a normalised gold answer occurs, on word boundaries, in the candidate."""
    have = f" {normalize_answer(candidate)} "
    return any(g and f" {g} " in have for g in (normalize_answer(x) for x in gold))


def token_f1(candidate: str, gold: Sequence[str]) -> float:
    """The best SQuAD token F1 of the candidate against any gold answer."""
    pred = normalize_answer(candidate).split()
    best = 0.0
    for g in gold:
        ref = normalize_answer(g).split()
        common = Counter(pred) & Counter(ref)
        same = sum(common.values())
        if same == 0:
            continue
        precision, recall = same / len(pred), same / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(candidate: str, gold: Sequence[str]) -> bool:
    return any(normalize_answer(candidate) == normalize_answer(g) for g in gold)
