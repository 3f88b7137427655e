"""The timeline page and its layout, from a hand-built trace (no I/O)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from ragrelay.observe.page import render_timeline
from ragrelay.observe.timeline import ORCHESTRATOR_LANE, build_timeline
from schemas import Citation, JobResult, TraceEvent, Usage

JOB = "0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000.0


def ev(type_: str, at: float, **kw: object) -> TraceEvent:
    return TraceEvent(job_id=JOB, type=type_, at=T0 + at, **kw)


def done(
    stage: str,
    it: int,
    shard: int,
    start: float,
    end: float,
    lane: tuple[str, int],
    outcome: str = "ok",
    **detail: object,
) -> TraceEvent:
    usage = Usage(llm_calls=1, input_tokens=100, output_tokens=20, cost_usd=0.001).to_dict()
    return ev(
        "step.completed",
        end,
        stage=stage,
        step_id=f"{JOB}/{it}/{stage}/{shard}",
        iteration=it,
        worker_host=lane[0],
        worker_pid=lane[1],
        started_at=T0 + start,
        ended_at=T0 + end,
        outcome=outcome,
        detail={"usage": usage, "model": "m", "prompt_version": f"{stage}@v1:abc", **detail},
    )


def sent(stage: str, it: int, shard: int, at: float, attempt: int = 1) -> TraceEvent:
    return ev(
        "step.dispatched",
        at,
        stage=stage,
        step_id=f"{JOB}/{it}/{stage}/{shard}",
        iteration=it,
        outcome="sent",
        detail={"attempt": attempt},
    )


A, R, G = ("host-a", 11), ("host-r", 22), ("host-g", 33)


def two_iteration_trace() -> list[TraceEvent]:
    return [
        ev(
            "job.submitted",
            0.0,
            outcome="accepted",
            detail={"tenant": "acme", "kind": "question", "budget": {"max_iterations": 3}},
        ),
        ev("job.started", 0.0, outcome="ok"),
        sent("analysis", 1, 0, 0.0),
        done("analysis", 1, 0, 0.01, 0.05, A, rewrites=["q1", "q2"], sources=["internal"]),
        sent("retrieval", 1, 0, 0.05),
        sent("retrieval", 1, 1, 0.05),
        done("retrieval", 1, 0, 0.06, 0.10, R, hits=10, source="internal"),
        ev(
            "step.timeout",
            2.0,
            stage="retrieval",
            step_id=f"{JOB}/1/retrieval/1",
            iteration=1,
            outcome="timeout",
            detail={"attempt": 1},
        ),
        sent("retrieval", 1, 1, 2.0, attempt=2),
        done("retrieval", 1, 1, 2.01, 2.05, R, hits=8, source="internal"),
        sent("generation", 1, 0, 2.05),
        done("generation", 1, 0, 2.06, 2.50, G, citations=["d1#0"]),
        sent("evaluation", 1, 0, 2.5),
        done(
            "evaluation",
            1,
            0,
            2.51,
            2.60,
            A,
            outcome="revise",
            scores={"faithfulness": 0.5, "relevance": 0.4},
        ),
        sent("analysis", 2, 0, 2.6),
        done("analysis", 2, 0, 2.61, 2.65, A, rewrites=["q3"]),
        sent("retrieval", 2, 0, 2.65),
        ev(
            "step.failed",
            2.70,
            stage="retrieval",
            step_id=f"{JOB}/2/retrieval/0",
            iteration=2,
            worker_host="host-r",
            worker_pid=22,
            outcome="permanent",
            detail={"error": "web source down </script><b>"},
        ),
        sent("generation", 2, 0, 2.7),
        done("generation", 2, 0, 2.71, 3.0, G, citations=["d1#0"]),
        sent("evaluation", 2, 0, 3.0),
        done(
            "evaluation",
            2,
            0,
            3.01,
            3.1,
            A,
            outcome="accept",
            scores={"faithfulness": 0.9, "relevance": 0.8},
        ),
        ev(
            "job.finished",
            3.1,
            iteration=2,
            outcome="succeeded",
            detail={"stop_reason": "accepted"},
        ),
    ]


def result() -> JobResult:
    return JobResult(
        job_id=JOB,
        tenant="acme",
        status="succeeded",
        stop_reason="accepted",
        iterations=2,
        answer="Paris is the capital <of> France.",
        scores={"faithfulness": 0.9},
        citations=[Citation(chunk_id="d1#0", doc_id="d1", title="France", quote="Paris…")],
        usage=Usage(llm_calls=8, input_tokens=800, output_tokens=160, cost_usd=0.008),
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collector()
    p.feed(html)
    return p.tags


def test_one_bar_per_completed_step_on_its_worker_lane() -> None:
    trace = two_iteration_trace()
    tags = parse(render_timeline(result(), trace))
    bars = [a for t, a in tags if t == "rect" and "step-bar" in (a.get("class") or "")]
    completed = [e for e in trace if e.type == "step.completed"]
    assert len(bars) == len(completed) == 8
    assert sorted(b["data-step-id"] or "" for b in bars) == sorted(
        e.step_id or "" for e in completed
    )
    by_step = {b["data-step-id"]: b for b in bars}
    assert by_step[f"{JOB}/1/generation/0"]["data-lane"] == "host-g:33"
    assert by_step[f"{JOB}/2/evaluation/0"]["data-outcome"] == "accept"
    assert {b["data-iteration"] for b in bars} == {"1", "2"}


def test_bars_are_placed_in_time_order_and_sized_by_duration() -> None:
    tags = parse(render_timeline(result(), two_iteration_trace()))
    bars = {
        a["data-step-id"]: a
        for t, a in tags
        if t == "rect" and "step-bar" in (a.get("class") or "")
    }
    gen1, ana2 = bars[f"{JOB}/1/generation/0"], bars[f"{JOB}/2/analysis/0"]
    assert float(gen1["x"] or 0) < float(ana2["x"] or 0)
    assert float(gen1["width"] or 0) > float(ana2["width"] or 0)  # 440 ms vs 40 ms


def test_timeouts_resends_and_failures_are_markers() -> None:
    tl = build_timeline(two_iteration_trace(), result())
    kinds = sorted(m.kind for m in tl.markers)
    assert kinds == ["failed", "resent", "timeout"]
    assert ORCHESTRATOR_LANE in tl.lanes  # the re-send and the sweeper's timeout
    resent = next(b for b in tl.bars if b.step_id.endswith("/1/retrieval/1"))
    assert resent.attempt == 2
    assert resent.wait_ms is not None and 9 < resent.wait_ms < 11  # dispatched 2.00, ran 2.01


def test_iterations_carry_verdicts_and_scores() -> None:
    tl = build_timeline(two_iteration_trace(), result())
    assert [(i.number, i.verdict) for i in tl.iterations] == [(1, "revise"), (2, "accept")]
    assert tl.iterations[1].mean_score is not None
    assert abs(tl.iterations[1].mean_score - 0.85) < 1e-9
    html = render_timeline(result(), two_iteration_trace())
    assert "+0.40" in html  # the gain of iteration 2 over 1 (0.45 -> 0.85)


def test_page_shows_answer_citations_usage_and_escapes_everything() -> None:
    html = render_timeline(result(), two_iteration_trace())
    assert "Paris is the capital &lt;of&gt; France." in html
    assert "d1#0" in html and "France" in html
    assert "$0.0080" in html and "960" in html  # cost and tokens
    assert "<b>" not in html  # from the failure reason
    data = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', html)
    assert data is not None
    assert len(json.loads(data.group(1))) == len(two_iteration_trace())


def test_page_is_self_contained() -> None:
    html = render_timeline(result(), two_iteration_trace())
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


def test_a_running_job_refreshes_and_has_no_answer_yet() -> None:
    trace = two_iteration_trace()[:6]
    html = render_timeline(None, trace)
    assert 'http-equiv="refresh"' in html
    assert "still running" in html
    tl = build_timeline(trace, None)
    assert tl.status == "running" and tl.tenant == "acme"


def test_an_empty_trace_still_renders() -> None:
    html = render_timeline(
        JobResult(
            job_id=JOB, tenant="t", status="failed", stop_reason="invalid_request", error="bad"
        ),
        [],
    )
    assert "bad" in html and "step-bar" not in html.split("<script")[0].split("</style>")[1]


def with_citation_urls(*urls: str | None) -> JobResult:
    cites = [
        Citation(chunk_id=f"d{i}#0", doc_id=f"d{i}", title=f"doc {i}", url=url)
        for i, url in enumerate(urls)
    ]
    return result().model_copy(update={"citations": cites})


def test_only_http_citation_urls_become_links() -> None:
    html = render_timeline(
        with_citation_urls(
            "javascript:alert(document.location)",
            " JaVa\tScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "//evil.example/x",
            "https://example.com/doc?a=1&b=2",
            None,
        ),
        two_iteration_trace(),
    )
    links = [a for t, a in parse(html) if t == "a"]
    assert [a["href"] for a in links] == ["https://example.com/doc?a=1&b=2"]
    assert links[0]["rel"] == "noopener noreferrer nofollow"
    assert html.count("(not linked)") == 5  # shown as refused, not silently dropped
    assert "javascript:" not in html.lower().replace("\t", "") and "data:text" not in html


def test_the_page_csp_allows_exactly_its_own_script_and_style() -> None:
    from ragrelay.observe.page import PAGE_CSP
    from ragrelay.observe.safe_html import csp_hash

    html = render_timeline(with_citation_urls("https://example.com/"), two_iteration_trace())
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    directives = dict(d.strip().split(" ", 1) for d in PAGE_CSP.split(";"))
    assert directives["script-src"] == csp_hash(scripts[0])
    assert directives["style-src"] == csp_hash(styles[0])
    assert directives["default-src"] == "'none'" and "unsafe" not in PAGE_CSP
    # nothing a hash cannot cover: no style= attributes, no on*= handlers
    attrs = {name for _, a in parse(html) for name in a}
    assert "style" not in attrs and not any(name.startswith("on") for name in attrs)


def test_citations_show_their_page_and_section() -> None:
    located = result().model_copy(
        update={
            "citations": [
                Citation(chunk_id="m#3", doc_id="m", title="Pump <Manual>", page=2, section="A > B")
            ]
        }
    )
    html = render_timeline(located, two_iteration_trace())
    assert "Pump &lt;Manual&gt;, page 2, A &gt; B" in html
