"""Eval reports: statistics, the Markdown and the PNG plots."""

from __future__ import annotations

import math
import re
from pathlib import Path

from ragrelay.evals.report import (
    ecdf,
    iteration_gain,
    iteration_scores,
    percentile,
    render_markdown,
    row_from_result,
    write_report,
)
from schemas import JobResult, TraceEvent

PNG = b"\x89PNG\r\n\x1a\n"


def rows() -> list[dict[str, object]]:
    return [
        {
            "id": "q1",
            "question": "a | b?",
            "latency_s": 0.2,
            "iterations": 1,
            "stop_reason": "accepted",
            "scores": {"faithfulness": 1.0},
            "metrics": {"f1": 0.8},
            "iteration_scores": [0.9],
        },
        {
            "id": "q2",
            "question": "c",
            "latency_s": 0.5,
            "iterations": 2,
            "stop_reason": "accepted",
            "scores": {"faithfulness": 0.5},
            "metrics": {"f1": 0.1},
            "iteration_scores": [0.4, 0.6],
        },
        {
            "id": "q3",
            "question": "d",
            "latency_s": 1.5,
            "iterations": 3,
            "stop_reason": "max_iterations",
            "scores": {"faithfulness": 0.2},
            "metrics": {"f1": 0.0},
            "iteration_scores": [0.3, 0.2, 0.5],
        },
    ]


def test_percentiles_and_cdf() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))
    assert ecdf([3.0, 1.0, 2.0]) == ([1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0])


def test_iteration_gain_counts_only_jobs_that_reached_each_iteration() -> None:
    gain = iteration_gain(rows())
    assert [int(g["jobs"]) for g in gain] == [3, 2, 1]
    assert gain[0]["mean_score"] == (0.9 + 0.4 + 0.3) / 3
    assert math.isnan(gain[0]["mean_gain"])
    assert abs(gain[1]["mean_gain"] - ((0.6 - 0.4) + (0.2 - 0.3)) / 2) < 1e-12
    assert int(gain[1]["improved"]) == 1
    assert abs(gain[2]["mean_gain"] - 0.3) < 1e-12


def test_iteration_scores_and_rows_come_from_the_trace() -> None:
    trace = [
        TraceEvent(
            job_id="j",
            type="step.completed",
            at=1.0,
            stage="evaluation",
            iteration=1,
            detail={"scores": {"a": 0.2, "b": 0.4}},
        ),
        TraceEvent(job_id="j", type="step.completed", at=2.0, stage="generation", iteration=2),
        TraceEvent(
            job_id="j",
            type="step.completed",
            at=3.0,
            stage="evaluation",
            iteration=2,
            detail={"scores": {"a": 1.0, "b": 0.6}},
        ),
    ]
    assert iteration_scores(trace) == [0.30000000000000004, 0.8]
    result = JobResult(
        job_id="j",
        tenant="t",
        status="succeeded",
        stop_reason="accepted",
        iterations=2,
        answer="x",
        scores={"a": 1.0},
        trace=trace,
    )
    row = row_from_result("q9", "why?", result, latency_s=0.25, metrics={"f1": 0.5})
    assert row["id"] == "q9" and row["iterations"] == 2 and row["metrics"] == {"f1": 0.5}
    assert row["iteration_scores"] == [0.30000000000000004, 0.8]


def test_write_report_writes_markdown_and_four_pngs(tmp_path: Path) -> None:
    path = write_report(rows(), {"questions": 3, "f1": 0.3}, tmp_path / "out", title="QA")
    text = path.read_text()
    assert text.startswith("# QA")
    for name in ("scores.png", "latency_cdf.png", "iterations.png", "iteration_gain.png"):
        assert f"![{name}]({name})" in text
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    assert "| f1 | 0.300 |" in text and "max_iterations: 1" in text
    assert "a \\| b?" in text  # a pipe in a question does not break the table
    assert text.index("| q3 |") < text.index("| q2 |")  # lowest f1 first


def test_questions_in_the_report_cannot_inject_html_or_links() -> None:
    row = {
        "id": "<b>q1</b>",
        "question": "[click](javascript:alert(1)) <img src=x onerror=alert(1)> & \\| [x]",
        "metrics": {"f1<script>": 0.1},
        "stop_reason": "<i>",
    }
    text = render_markdown([row], {"<s>mean</s>": 1.0}, [], title="<script>t</script>")
    assert "<" not in text  # no raw HTML at all
    assert not re.search(r"(?<!\\)\]\(", text)  # every `](` is escaped: no link
    assert (
        "\\[click\\](javascript:alert(1)) &lt;img src=x onerror=alert(1)&gt; &amp; "
        "\\\\\\| \\[x\\]" in text
    )
    assert "| f1&lt;script&gt; |" in text and "&lt;b&gt;q1&lt;/b&gt;" in text


def test_a_report_without_scores_still_writes(tmp_path: Path) -> None:
    path = write_report([{"id": "q1", "latency_s": 0.1}], {}, tmp_path)
    assert "latency_cdf.png" in path.read_text()
    assert not (tmp_path / "scores.png").exists()


def test_ab_report_has_the_table_and_a_forest_plot(tmp_path: Path) -> None:
    from ragrelay.evals.ab import compare_runs
    from ragrelay.evals.report import write_ab_report

    a = [{"id": f"q{i}", "metrics": {"f1": i % 2 * 0.5}, "latency_s": 0.1} for i in range(20)]
    b = [
        {"id": f"q{i}", "metrics": {"f1": i % 2 * 0.5 + 0.25}, "latency_s": 0.2} for i in range(20)
    ]
    comps = compare_runs(a, b, ["f1", "latency_s"], resamples=300)
    path = write_ab_report(comps, tmp_path, label_a="generation@v1", label_b="generation@v2")
    text = path.read_text()
    assert "generation@v2" in text and "| f1 | 20 |" in text and "| latency_s | 20 |" in text
    assert "B better" in text and "A better" in text
    assert (tmp_path / "ab.png").read_bytes().startswith(PNG)


def test_report_and_ab_commands_read_rows_files(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from ragrelay.evals.report import ab_command, report_command

    a = [
        {"id": f"q{i}", "metrics": {"f1": 0.2}, "latency_s": 0.1, "iterations": 1}
        for i in range(30)
    ]
    b = [
        {"id": f"q{i}", "metrics": {"f1": 0.2 + (i % 3) * 0.1}, "latency_s": 0.1, "iterations": 1}
        for i in range(30)
    ]
    fa, fb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    fa.write_text("".join(json.dumps(r) + "\n" for r in a))
    fb.write_text("".join(json.dumps(r) + "\n" for r in b))
    runner = CliRunner()
    out = runner.invoke(report_command, [str(fb), "--out", str(tmp_path / "rep")])
    assert out.exit_code == 0, out.output
    assert "| mean f1 | 0.3 |" in (tmp_path / "rep" / "report.md").read_text()
    out = runner.invoke(ab_command, [str(fa), str(fb), "--json", "--resamples", "500"])
    assert out.exit_code == 0, out.output
    by_metric = {c["metric"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert set(by_metric) == {"f1", "latency_s"}
    assert by_metric["f1"]["verdict"] == "B better"
    assert by_metric["latency_s"]["verdict"] == "no significant difference"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    out = runner.invoke(report_command, [str(bad), "--out", str(tmp_path / "x")])
    assert out.exit_code != 0 and "bad.jsonl:1" in str(out.exception)
