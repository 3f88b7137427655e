"""Triage: rules, the JSON model (train → save → load → predict), the honest fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bus.errors import ConfigError, UsageError
from workers.email.features import email_features
from workers.email.reply import compose_reply, first_name, strip_citation_marks
from workers.email.train import (
    choose_no_reply_threshold,
    choose_spam_threshold,
    fit,
    metrics,
    normalise_label,
)
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
    return {
        "subject": f"LOWEST mortgage rates guaranteed {i}!!!",
        "from": f"deal{i}123@cheap{i}.biz",
        "body": f"Click here now, 100% free money, act now, limited time offer {i}. $$$ win",
    }


def _question(i: int) -> dict[str, str]:
    return {
        "subject": f"Re: [ILUG] kernel {i} panics on boot",
        "from": f"Ann <ann{i}@tcd.ie>",
        "body": f"Has anyone seen the kernel 2.4.{i} panic with raid1? How do I debug it?",
        "list_id": "ILUG <ilug.linux.ie>",
        "precedence": "bulk",
        "in_reply_to": f"<{i}@x>",
    }


def _fyi(i: int) -> dict[str, str]:
    return {
        "subject": f"[use Perl] Headlines for 2002-08-{i:02d}",
        "from": "pudge@perl.org",
        "body": f"Headlines: perl 5.8.{i} released. Read more on the site. Newsletter digest.",
    }


EXAMPLES = (
    [(_spam(i), "spam") for i in range(12)]
    + [(_question(i), "needs_reply") for i in range(12)]
    + [(_fyi(i), "ham_other") for i in range(12)]
)


@pytest.fixture(scope="module")
def model() -> TriageModel:
    return fit(EXAMPLES, folds=3)


def test_model_separates_clear_cases_and_round_trips_as_json(
    model: TriageModel, tmp_path: Path
) -> None:
    path = default_model_path(tmp_path)
    model.save(path)
    assert json.loads(path.read_text())["format"] == "ragrelay-triage/2"
    assert classify(_spam(99), path)[0] == "spam"
    assert classify(_question(99), path)[0] == "needs_reply"
    assert classify(_fyi(28), path)[0] == "no_reply"
    loaded = load_model(path)
    assert loaded is not None
    probs = loaded.probabilities(_question(5))
    assert abs(sum(probs.values()) - 1.0) < 1e-9
    assert classify_detailed(_question(5), path).source == "model"


def test_numpy_prediction_matches_scikit_learn() -> None:
    """The JSON model applied with numpy gives scikit-learn's own probabilities (both
    blocks, each normalised on its own)."""
    from workers.email.train import _fit_core, _predict_proba, _to_model

    feats = [email_features(e) for e, _ in EXAMPLES]
    labels = [normalise_label(y) for _, y in EXAMPLES]
    vecs, clf = _fit_core(feats, labels, 4.0)
    ours = TriageModel.from_json(_to_model(vecs, clf, 0.5, {}).to_json())
    assert len(ours.blocks) == 2 and sum(ours.blocks) == len(ours.idf)
    for probe in (_question(42), _spam(42), _fyi(3), {"subject": "", "body": ""}):
        expected = _predict_proba(vecs, clf, [email_features(probe)])[0]
        got = ours.probabilities(probe)
        assert np.allclose([got[c] for c in clf.classes_], expected, atol=1e-5)


def test_blocks_keep_header_evidence_loud_in_long_mail() -> None:
    """Padding the body changes the text block only: the meta block's weights are the same
    for a two-line and a two-thousand-word message."""
    from workers.email.features import block_of

    short = dict(_fyi(1))
    long = dict(_fyi(1), body=_fyi(1)["body"] + " lorem ipsum dolor" * 700)
    meta_short = [f for f in email_features(short) if block_of(f) == 1]
    meta_long = [f for f in email_features(long) if block_of(f) == 1]
    assert {f for f in meta_short if not f.startswith("x:body_len")} == {
        f for f in meta_long if not f.startswith("x:body_len")
    }
    assert all(block_of(f) == 0 for f in email_features(long) if f.startswith(("b:", "s:")))


def test_sender_recipient_and_thread_features() -> None:
    email = {
        "subject": "Re: [ILUG] raid",
        "from": "Ann <Ann.Lee@tcd.ie>",
        "from_email": "Ann.Lee@tcd.ie",
        "to": "ilug@linux.ie, bob@example.org",
        "list_post": "<mailto:ilug@linux.ie>",
        "reply_to": "ilug@linux.ie",
        "references": "<a@x> <b@x> <c@x>",
        "body": "On Tue, Bob wrote:\n\nDoes anyone know why? Can you check it?",
    }
    feats = set(email_features(email))
    assert {
        "fa:ann.lee@tcd.ie",
        "fl:ann.lee",
        "x:to_count_2",
        "x:to_list",
        "x:reply_to_list",
        "x:refs_3",
        "x:attribution",
        "x:ends_question",
        "x:asks_anyone",
        "x:second_person",
        "x:non_ascii_0",
    } <= feats
    assert "x:non_ascii_4" in email_features({"body": "第十一届电子展组委会" * 5})


def test_version_1_models_still_load(model: TriageModel, tmp_path: Path) -> None:
    """A one-block model written before the blocks existed is read as one block."""
    data = json.loads(model.to_json())
    data["format"] = "ragrelay-triage/1"
    del data["blocks"], data["no_reply_threshold"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(data))
    loaded = load_model(path)
    assert loaded is not None and loaded.blocks == ()
    assert loaded.no_reply_threshold == 0.5
    assert abs(sum(loaded.probabilities(_question(1)).values()) - 1.0) < 1e-9
    data["format"], data["blocks"] = "ragrelay-triage/2", [1, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="shapes"):
        load_model(path)


def test_missing_model_falls_back_to_rules_and_says_so(tmp_path: Path) -> None:
    decision = classify_detailed(_question(1), tmp_path / "absent.json")
    assert decision.source == "fallback-rules"
    assert decision.label == "needs_reply" and decision.score <= FALLBACK_MAX_SCORE
    # keywords alone are not confidence: a person looks (never spam without a filter)
    assert classify(_spam(1), None) == ("review", FALLBACK_MAX_SCORE)
    # a configured filter's verdict (set by the ingress) is spam even without a model
    flagged = {**_spam(1), "filter_source": "spamd", "filter_score": "9.1"}
    assert classify(flagged, None) == ("spam", FALLBACK_MAX_SCORE)
    assert classify({"subject": "lunch", "body": "see you at noon."}, None)[0] == "no_reply"


@pytest.mark.parametrize(
    ("email", "label", "source"),
    [
        (
            {"subject": "Out of office", "auto_submitted": "auto-replied"},
            "no_reply",
            "rule:auto-submitted",
        ),
        (
            {"subject": "Delivery failure", "from": "MAILER-DAEMON@mx.example.com"},
            "no_reply",
            "rule:automatic-sender",
        ),
        ({"subject": "hi?", "precedence": "junk"}, "no_reply", "rule:precedence-junk"),
    ],
)
def test_rules_win_over_the_model(
    model: TriageModel, tmp_path: Path, email: dict[str, str], label: str, source: str
) -> None:
    path = tmp_path / "m.json"
    model.save(path)
    decision = classify_detailed(email, path)
    assert (decision.label, decision.source) == (label, source)


def test_a_senders_own_spam_headers_are_not_trusted(model: TriageModel, tmp_path: Path) -> None:
    """X-Spam-Flag in the message itself can be forged: it decides nothing (the ingress
    turns a *configured* upstream's headers into filter_* keys instead)."""
    path = tmp_path / "m.json"
    model.save(path)
    forged = {**_question(5), "x_spam_flag": "YES"}
    assert classify_detailed(forged, path).label == classify_detailed(_question(5), path).label
    assert classify_detailed(forged, path).label != "spam"


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


def test_no_reply_threshold_moves_only_the_ham_boundary() -> None:
    probs = {"spam": 0.1, "needs_reply": 0.36, "no_reply": 0.54}  # no_reply share 0.6
    assert decide_from_probabilities(probs, 0.5)[0] == "no_reply"
    assert decide_from_probabilities(probs, 0.5, 0.6)[0] == "no_reply"
    assert decide_from_probabilities(probs, 0.5, 0.65) == ("needs_reply", 0.36)
    assert decide_from_probabilities({"spam": 0.8, "no_reply": 0.2}, 0.5, 0.9)[0] == "spam"
    # out-of-fold shares 0.2 / 0.58 / 0.62 / 0.9: only a cut in (0.58, 0.62] gets all four
    oof = [
        {"needs_reply": 0.8, "no_reply": 0.2},
        {"needs_reply": 0.42, "no_reply": 0.58},
        {"needs_reply": 0.38, "no_reply": 0.62},
        {"needs_reply": 0.1, "no_reply": 0.9},
    ]
    truth = ["needs_reply", "needs_reply", "no_reply", "no_reply"]
    assert choose_no_reply_threshold(oof, truth, 0.5) == 0.6
    # nothing to separate: every cut ties, the neutral 0.5 wins
    assert choose_no_reply_threshold(oof[:1], truth[:1], 0.5) == 0.5


def test_model_changes_are_picked_up(model: TriageModel, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    model.save(path)
    first = load_model(path)
    relabelled = TriageModel(
        model.classes, model.vocabulary, model.idf, model.coef, model.intercept, 0.01, {"v": 2}
    )
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
