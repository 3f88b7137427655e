"""Triage: rules, the JSON model (train → save → load → predict), the honest fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bus.errors import ConfigError, UsageError
from workers.email.features import email_features
from workers.email.reply import compose_reply, first_name, strip_citation_marks
from workers.email.train import choose_spam_threshold, fit, metrics, normalise_label
from workers.email.triage import (
    FALLBACK_MAX_SCORE,
    TriageModel,
    classify,
    classify_detailed,
    decide_from_probabilities,
    default_model_path,
    load_model,
)


def _spam(i: int) -> dict[str, str]:
    return {"subject": f"LOWEST mortgage rates guaranteed {i}!!!", "from": f"deal{i}123@cheap{i}.biz",
            "body": f"Click here now, 100% free money, act now, limited time offer {i}. $$$ win"}


def _question(i: int) -> dict[str, str]:
    return {"subject": f"Re: [ILUG] kernel {i} panics on boot", "from": f"Ann <ann{i}@tcd.ie>",
            "body": f"Has anyone seen the kernel 2.4.{i} panic with raid1? How do I debug it?",
            "list_id": "ILUG <ilug.linux.ie>", "precedence": "bulk", "in_reply_to": f"<{i}@x>"}


def _fyi(i: int) -> dict[str, str]:
    return {"subject": f"[use Perl] Headlines for 2002-08-{i:02d}", "from": "pudge@perl.org",
            "body": f"Headlines: perl 5.8.{i} released. Read more on the site. Newsletter digest."}


EXAMPLES = (
    [(_spam(i), "spam") for i in range(12)]
    + [(_question(i), "needs_reply") for i in range(12)]
    + [(_fyi(i), "ham_other") for i in range(12)]
)


@pytest.fixture(scope="module")
def model() -> TriageModel:
    return fit(EXAMPLES, folds=3)


def test_model_separates_clear_cases_and_round_trips_as_json(model: TriageModel, tmp_path: Path) -> None:
    path = default_model_path(tmp_path)
    model.save(path)
    assert json.loads(path.read_text())["format"] == "ragrelay-triage/1"
    assert classify(_spam(99), path)[0] == "spam"
    assert classify(_question(99), path)[0] == "needs_reply"
    assert classify(_fyi(28), path)[0] == "no_reply"
    loaded = load_model(path)
    assert loaded is not None
    probs = loaded.probabilities(_question(5))
    assert abs(sum(probs.values()) - 1.0) < 1e-9
    assert classify_detailed(_question(5), path).source == "model"


def test_numpy_prediction_matches_scikit_learn() -> None:
    """The JSON model applied with numpy gives scikit-learn's own probabilities."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from workers.email.features import identity
    from workers.email.train import _to_model

    feats = [email_features(e) for e, _ in EXAMPLES]
    labels = [normalise_label(y) for _, y in EXAMPLES]
    vec = TfidfVectorizer(analyzer=identity, sublinear_tf=True)
    clf = LogisticRegression(C=4.0, max_iter=2000).fit(vec.fit_transform(feats), labels)
    ours = _to_model(vec, clf, 0.5, {})
    probe = _question(42)
    expected = clf.predict_proba(vec.transform([email_features(probe)]))[0]
    got = ours.probabilities(probe)
    assert np.allclose([got[c] for c in clf.classes_], expected, atol=1e-9)


def test_missing_model_falls_back_to_rules_and_says_so(tmp_path: Path) -> None:
    decision = classify_detailed(_question(1), tmp_path / "absent.json")
    assert decision.source == "fallback-rules"
    assert decision.label == "needs_reply" and decision.score <= FALLBACK_MAX_SCORE
    assert classify(_spam(1), None) == ("spam", FALLBACK_MAX_SCORE)
    assert classify({"subject": "lunch", "body": "see you at noon."}, None)[0] == "no_reply"


@pytest.mark.parametrize(
    ("email", "label", "source"),
    [
        ({"subject": "Out of office", "auto_submitted": "auto-replied"}, "no_reply", "rule:auto-submitted"),
        ({"subject": "Delivery failure", "from": "MAILER-DAEMON@mx.example.com"}, "no_reply", "rule:automatic-sender"),
        ({"subject": "hi?", "precedence": "junk"}, "no_reply", "rule:precedence-junk"),
        ({"subject": "win", "x_spam_flag": "YES"}, "spam", "rule:x-spam-flag"),
    ],
)
def test_rules_win_over_the_model(model: TriageModel, tmp_path: Path, email: dict[str, str],
                                  label: str, source: str) -> None:
    path = tmp_path / "m.json"
    model.save(path)
    decision = classify_detailed(email, path)
    assert (decision.label, decision.source) == (label, source)


def test_list_headers_are_features_not_overrides(model: TriageModel) -> None:
    """Mailing-list mail with a question must stay answerable (most real questions are)."""
    feats = email_features(_question(3))
    assert "h:list_id" in feats and "h:precedence=bulk" in feats
    assert model.decide(_question(3)).label == "needs_reply"


def test_spam_needs_the_threshold() -> None:
    probs = {"spam": 0.6, "needs_reply": 0.3, "no_reply": 0.1}
    assert decide_from_probabilities(probs, 0.5) == ("spam", 0.6)
    assert decide_from_probabilities(probs, 0.7) == ("needs_reply", 0.3)
    oof = [{"spam": 0.55}, {"spam": 0.6}, {"spam": 0.9}, {"spam": 0.2}]
    assert choose_spam_threshold(oof, ["needs_reply", "spam", "spam", "spam"], 0.99) == 0.575


def test_model_changes_are_picked_up(model: TriageModel, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    model.save(path)
    first = load_model(path)
    relabelled = TriageModel(model.classes, model.vocabulary, model.idf, model.coef,
                             model.intercept, 0.01, {"v": 2})
    relabelled.save(path)
    second = load_model(path)
    assert first is not None and second is not None and second.spam_threshold == 0.01


def test_invalid_model_and_labels_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="invalid triage model"):
        load_model(bad)
    with pytest.raises(UsageError, match="unknown triage label"):
        normalise_label("maybe")
    with pytest.raises(UsageError, match="no examples of"):
        fit([(e, y) for e, y in EXAMPLES if y != "spam"])


def test_metrics_figures() -> None:
    truth = ["spam", "spam", "needs_reply", "no_reply"]
    predicted = ["spam", "needs_reply", "needs_reply", "no_reply"]
    m = metrics(truth, predicted)
    assert m["spam_precision"] == 1.0 and m["spam_recall"] == 0.5
    assert m["needs_reply_recall"] == 1.0


def test_reply_body() -> None:
    body = compose_reply("How?", "Use apt-get [1] and reboot [doc#2].", "Smith, John")
    assert body.startswith("Hi John,\n\nUse apt-get and reboot.")
    assert body.rstrip().endswith("Best regards,")
    assert first_name("jdoe@example.org") is None
    assert first_name('"Ann Lee"') == "Ann"
    assert compose_reply("q", "", None).startswith("Hello,\n\nThanks for your message.")
    assert strip_citation_marks("x [3, 4].") == "x."
