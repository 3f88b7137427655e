"""Grouped (out-of-distribution) calibration and the filter + model spam decision."""

from __future__ import annotations

import pytest

from workers.email.calibrate import choose_thresholds, group_folds, mail_group, precision_at
from workers.email.combine import spam_verdict
from workers.email.triage import TriageModel


def test_mail_group_is_the_list_else_the_sender_domain() -> None:
    assert mail_group({"list_id": "Friends of Rohit <fork.xent.com>"}) == "list:fork.xent.com"
    assert (
        mail_group({"list_id": "list zzzzteana@yahoogroups.com; contact x@y"})
        == "list:zzzzteana@yahoogroups.com"
    )
    assert mail_group({"from_email": "a@mail.Example.CO"}) == "domain:example.co"
    assert mail_group({"from": "Joe <joe@sub.spammer.biz>"}) == "domain:spammer.biz"
    assert mail_group({}) == "unknown"


def test_group_folds_keep_groups_whole_and_balance_sizes() -> None:
    groups = ["a"] * 6 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"]
    folds = group_folds(groups, 3)
    assert sorted(i for f in folds for i in f) == list(range(len(groups)))
    for fold in folds:
        for other in folds:
            if other is not fold:  # no group on both sides
                assert not {groups[i] for i in fold} & {groups[i] for i in other}
    assert sorted(len(f) for f in folds) == [4, 5, 6]
    assert group_folds(groups, 3) == folds  # deterministic


def test_thresholds_need_precision_to_hold_above_them_too() -> None:
    # ham at 0.5 and 0.8; spam at 0.6, 0.9, 0.95: 0.6 has precision 2/3 at most
    oof = [{"spam": p} for p in (0.5, 0.8, 0.6, 0.9, 0.95, 0.1)]
    labels = ["needs_reply", "no_reply", "spam", "spam", "spam", "needs_reply"]
    assert precision_at(oof, labels, 0.85) == (1.0, 2)
    spam, review = choose_thresholds(oof, labels, target=0.99, review_precision=0.6)
    assert spam == 0.825  # the lowest grid value above the 0.8 ham message
    assert review == 0.3  # precision ≥ 0.6 holds at every cut from 0.3 up (3/5 … 1)
    # ≥ 0.7 breaks at 0.8 (2/3): the review band closes up to the spam threshold
    assert choose_thresholds(oof, labels, target=0.99, review_precision=0.7) == (0.825, 0.825)


@pytest.mark.parametrize(
    ("p_spam", "filter_keys", "expected"),
    [
        (0.95, {}, "spam"),  # model alone, confident
        (0.6, {}, "review"),  # model alone, uncertain
        (0.1, {}, "ham"),
        (0.9, {"filter_score": "12.0"}, "spam"),  # both say spam
        (0.6, {"filter_score": "12.0"}, "review"),  # filter spam, model unsure: a person
        (0.1, {"filter_score": "12.0"}, "review"),  # they disagree
        (0.95, {"filter_score": "0.0"}, "review"),  # filter sure it is ham: never spam
        (0.95, {"filter_score": "3.0"}, "spam"),  # filter unsure, model confident
        (0.6, {"filter_score": "3.0"}, "review"),
        (0.1, {"filter_score": "3.0"}, "ham"),
        (0.95, {"auth_result": "pass"}, "review"),  # authenticated sender: a person looks
    ],
)
def test_filter_and_model_combined(
    p_spam: float, filter_keys: dict[str, str], expected: str
) -> None:
    email = dict(filter_keys)
    if "filter_score" in email:
        email |= {"filter_source": "spamd", "filter_required": "5.0"}
    assert spam_verdict(p_spam, 0.8, 0.4, email)[0] == expected


def test_no_reply_cut_keeps_needs_reply_recall() -> None:
    from workers.email.train import choose_no_reply_for_recall

    # needs_reply shares of no_reply: 0.1, 0.2, 0.62, 0.9 → only a cut above 0.9 keeps all
    oof = [{"needs_reply": 1 - s, "no_reply": s} for s in (0.1, 0.2, 0.62, 0.9, 0.95)]
    labels = ["needs_reply"] * 4 + ["no_reply"]
    assert choose_no_reply_for_recall(oof, labels, 0.8, target=1.0) == 0.95
    assert choose_no_reply_for_recall(oof, labels, 0.8, target=0.75) == 0.65
    assert choose_no_reply_for_recall(oof[:4], labels[:4], 0.8, target=1.0) == 0.95


def test_filter_alone_without_a_model() -> None:
    assert spam_verdict(None, 0.8, 0.4, {"filter_source": "spamd", "filter_score": "6"})[0] == (
        "spam"
    )
    assert spam_verdict(None, 0.8, 0.4, {})[0] == "ham"


def test_review_threshold_survives_json(model_json: str) -> None:
    model = TriageModel.from_json(model_json)
    assert model.review_threshold is not None and model.review_threshold <= model.spam_threshold
    assert TriageModel.from_json(model.to_json()).review_threshold == model.review_threshold


@pytest.fixture(scope="module")
def model_json() -> str:
    from workers.email.train import fit

    examples = []
    for i in range(12):
        examples.append(
            (
                {
                    "subject": f"cheap pills offer {i}",
                    "body": "buy now limited offer click here",
                    "from_email": f"x{i}@spam{i}.biz",
                },
                "spam",
            )
        )
        examples.append(
            (
                {
                    "subject": f"build fails on step {i}?",
                    "body": "how do I fix the linker error? anyone?",
                    "from_email": f"dev{i}@list{i % 4}.org",
                    "list_id": f"<dev{i % 4}.example.org>",
                },
                "needs_reply",
            )
        )
        examples.append(
            (
                {
                    "subject": f"headlines {i}",
                    "body": "today's stories, links below",
                    "from_email": f"feeds@news{i % 3}.org",
                },
                "no_reply",
            )
        )
    return fit(examples, folds=3).to_json()
