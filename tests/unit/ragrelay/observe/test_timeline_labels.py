"""The timeline page says what was asked and names its lanes by stage and process (issue 22,
item 11), not by ``host:pid`` alone."""

from __future__ import annotations

import re

from ragrelay.observe.page import render_timeline
from ragrelay.observe.timeline import ORCHESTRATOR_LANE, build_timeline
from tests.unit.ragrelay.observe.test_timeline import done, ev, sent

QUESTION = "How does ragrelay make sure <no> job loops forever?"


def trace(lanes: dict[str, tuple[str, int]]) -> list:  # type: ignore[type-arg]
    return [
        ev("job.submitted", 0.0, outcome="accepted", detail={"tenant": "acme", "query": QUESTION}),
        sent("analysis", 1, 0, 0.01),
        done("analysis", 1, 0, 0.02, 0.05, lanes["analysis"]),
        sent("retrieval", 1, 0, 0.06),
        done("retrieval", 1, 0, 0.07, 0.09, lanes["retrieval"]),
        sent("generation", 1, 0, 0.10),
        done("generation", 1, 0, 0.11, 0.20, lanes["generation"]),
        sent("evaluation", 1, 0, 0.21),
        done("evaluation", 1, 0, 0.22, 0.25, lanes["evaluation"], outcome="accept"),
        sent("generation", 1, 1, 0.30, attempt=2),  # a re-send: the orchestrator lane
    ]


def test_lanes_are_named_by_stage_and_process_and_the_question_is_kept() -> None:
    one_host = {
        s: ("vm", 100 + i)
        for i, s in enumerate(("analysis", "retrieval", "generation", "evaluation"))
    }
    tl = build_timeline(trace(one_host))
    assert tl.question == QUESTION
    assert tl.lane_label("vm:102") == "generation · pid 102"
    assert tl.lane_label(ORCHESTRATOR_LANE) == ORCHESTRATOR_LANE
    html = render_timeline(None, trace(one_host))
    assert '<p class="question" id="question">How does ragrelay make sure &lt;no&gt; job' in html
    labels = re.findall(r'<text class="lane-label"[^>]*>([^<]*)<', html)
    assert labels == [
        "analysis · pid 100",
        "retrieval · pid 101",
        "generation · pid 102",
        "evaluation · pid 103",
        "orchestrator",
    ]
    assert not any(re.fullmatch(r"vm:\d+", label) for label in labels)


def test_several_hosts_name_the_host_and_one_process_for_everything_says_so() -> None:
    hosts = {
        s: (f"node-{i}", 7)
        for i, s in enumerate(("analysis", "retrieval", "generation", "evaluation"))
    }
    assert build_timeline(trace(hosts)).lane_label("node-3:7") == "evaluation · node-3 pid 7"
    embedded = build_timeline(trace(dict.fromkeys(hosts, ("vm", 9))))
    assert embedded.lane_label("vm:9") == "all stages · pid 9"
