"""Eval reports: a Markdown file plus PNG plots from per-question rows.

``write_report(rows, summary, out_dir)`` writes ``out_dir/report.md`` and four plots:
``scores.png`` (distribution of every score), ``latency_cdf.png``, ``iterations.png`` and
``iteration_gain.png`` (mean evaluation score at each iteration of the evaluate→rewrite
loop, and the gain over the previous one). ``row_from_result`` builds a row from a JobResult
and its trace, so any harness (``ragrelay eval qa``) can produce rows the same way.

A row is a plain dict (JSON-friendly), every key but ``id`` optional:

    {"id": "q1", "question": "...", "status": "succeeded", "stop_reason": "accepted",
     "iterations": 2, "latency_s": 0.41, "tokens": 0, "cost_usd": 0.0,
     "scores": {"faithfulness": 1.0, "relevance": 0.5},      # the job's evaluation scores
     "metrics": {"f1": 0.67, "exact_match": 0.0, "hit": 1.0}, # the harness's own checks
     "iteration_scores": [0.55, 0.75]}                         # mean eval score per iteration

Plots use matplotlib's object API on the Agg canvas (no pyplot state, no display).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from bus.errors import UsageError
from ragrelay.evals.files import json_lines
from schemas import JobResult, TraceEvent

Row = Mapping[str, Any]


# -- rows ------------------------------------------------------------------------------------


def iteration_scores(trace: Iterable[TraceEvent]) -> list[float]:
    """Mean evaluation score of each iteration, in order, from the job's trace."""
    by_iteration: dict[int, float] = {}
    for e in trace:
        scores = e.detail.get("scores") if e.type == "step.completed" else None
        if e.stage == "evaluation" and isinstance(scores, dict) and scores:
            by_iteration[e.iteration or len(by_iteration) + 1] = sum(
                float(v) for v in scores.values()
            ) / len(scores)
    return [by_iteration[k] for k in sorted(by_iteration)]


def row_from_result(
    case_id: str,
    question: str,
    result: JobResult,
    *,
    latency_s: float,
    metrics: Mapping[str, float] | None = None,
    trace: Sequence[TraceEvent] | None = None,
) -> dict[str, Any]:
    """One report row for a finished job (``trace`` defaults to ``result.trace``)."""
    return {
        "id": case_id,
        "question": question,
        "job_id": result.job_id,
        "status": result.status,
        "stop_reason": result.stop_reason,
        "iterations": result.iterations,
        "latency_s": latency_s,
        "tokens": result.usage.tokens,
        "cost_usd": result.usage.cost_usd,
        "scores": dict(result.scores),
        "metrics": dict(metrics or {}),
        "iteration_scores": iteration_scores(trace if trace is not None else result.trace),
        "answer": result.answer,
    }


def summarize(rows: Sequence[Row]) -> dict[str, Any]:
    """A default summary: questions, the mean of every score and metric, latency p50/p95,
    mean iterations, total tokens and cost."""
    out: dict[str, Any] = {"questions": len(rows)}
    for name, vals in score_columns(rows).items():
        out[f"mean {name}"] = sum(vals) / len(vals)
    lat = [float(r["latency_s"]) for r in rows if r.get("latency_s") is not None]
    if lat:
        out["latency p50 (s)"] = percentile(lat, 50)
        out["latency p95 (s)"] = percentile(lat, 95)
    iters = [int(r["iterations"]) for r in rows if r.get("iterations")]
    if iters:
        out["mean iterations"] = sum(iters) / len(iters)
    out["tokens"] = sum(int(r.get("tokens") or 0) for r in rows)
    out["cost (USD)"] = sum(float(r.get("cost_usd") or 0.0) for r in rows)
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows from a JSON-lines file (one row per line, as ``eval qa --rows`` writes them)."""
    rows: list[dict[str, Any]] = []
    for lineno, row in json_lines(path):
        if not isinstance(row, dict) or "id" not in row:
            raise UsageError(f'{path}:{lineno}: a row is a JSON object with an "id"')
        rows.append(row)
    return rows


# -- pure statistics -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), ``q`` in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ecdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The empirical CDF as (sorted values, fraction ≤ value)."""
    ordered = sorted(values)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def score_columns(rows: Sequence[Row]) -> dict[str, list[float]]:
    """Every score and metric over the rows, by name (metrics win a name clash)."""
    out: dict[str, list[float]] = {}
    for row in rows:
        merged = {**(row.get("scores") or {}), **(row.get("metrics") or {})}
        for name, value in merged.items():
            if value is not None:
                out.setdefault(str(name), []).append(float(value))
    return dict(sorted(out.items()))


def iteration_gain(rows: Sequence[Row]) -> list[dict[str, float]]:
    """Per iteration k: jobs that reached it, their mean score at k, and the mean gain
    score(k) - score(k-1) over the jobs that have both (what looping again bought)."""
    table: list[dict[str, float]] = []
    depth = max((len(r.get("iteration_scores") or []) for r in rows), default=0)
    for k in range(depth):
        at_k = [
            list(r["iteration_scores"]) for r in rows if len(r.get("iteration_scores") or []) > k
        ]
        scores = [s[k] for s in at_k]
        gains = [s[k] - s[k - 1] for s in at_k] if k else []
        table.append(
            {
                "iteration": float(k + 1),
                "jobs": float(len(at_k)),
                "mean_score": sum(scores) / len(scores),
                "mean_gain": sum(gains) / len(gains) if gains else math.nan,
                "improved": float(sum(1 for g in gains if g > 1e-9)),
            }
        )
    return table


# -- plots -----------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(wspace=0.35, hspace=0.6)
    return fig


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)


def plot_scores(columns: Mapping[str, Sequence[float]], path: Path) -> None:
    names = list(columns)
    cols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / cols))
    fig = _figure(3.2 * cols, 2.6 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    bins = [i / 10 for i in range(11)]
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        vals = [min(max(v, 0.0), 1.0) for v in columns[names[i]]]
        ax.hist(vals, bins=bins, color="#2f76b5", edgecolor="white")
        ax.axvline(sum(vals) / len(vals), color="#c62828", linestyle="--", linewidth=1)
        ax.set_title(f"{names[i]} (mean {sum(vals) / len(vals):.2f})", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_xlabel("score")
        ax.set_ylabel("questions")
    fig.suptitle("Score distributions", fontsize=11)
    _save(fig, path)


def plot_latency_cdf(latencies: Sequence[float], path: Path) -> None:
    fig = _figure()
    ax = fig.subplots()
    xs, ys = ecdf(latencies)
    ax.step(xs, ys, where="post", color="#2f76b5")
    for q, colour in ((50, "#2e9c5a"), (95, "#e0892b"), (99, "#c62828")):
        v = percentile(latencies, q)
        ax.axvline(v, color=colour, linestyle="--", linewidth=1, label=f"p{q} {v:.3f} s")
    ax.set_xlabel("job latency (s)")
    ax.set_ylabel("fraction of questions")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Latency CDF ({len(latencies)} jobs)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_iterations(iterations: Sequence[int], path: Path) -> None:
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    counts = Counter(iterations)
    ks = list(range(1, max(counts) + 1))
    bars = ax.bar(ks, [counts.get(k, 0) for k in ks], color="#7b5ea7")
    ax.bar_label(bars)
    ax.set_xticks(ks)
    ax.set_xlabel("iterations of the evaluate→rewrite loop")
    ax.set_ylabel("jobs")
    ax.set_title("Iterations per job")
    _save(fig, path)


def plot_iteration_gain(gain: Sequence[Mapping[str, float]], path: Path) -> None:
    fig = _figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    ks = [int(g["iteration"]) for g in gain]
    left.plot(ks, [g["mean_score"] for g in gain], marker="o", color="#2f76b5")
    for g in gain:
        left.annotate(
            f"n={int(g['jobs'])}",
            (g["iteration"], g["mean_score"]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
    left.margins(y=0.15)
    left.set_xticks(ks)
    left.set_xlabel("iteration")
    left.set_ylabel("mean evaluation score")
    left.set_title("Score at each iteration (jobs that reached it)", fontsize=10)
    later = [g for g in gain if not math.isnan(g["mean_gain"])]
    colours = ["#2e9c5a" if g["mean_gain"] >= 0 else "#c62828" for g in later]
    bars = right.bar(
        [int(g["iteration"]) for g in later],
        [g["mean_gain"] for g in later],
        color=colours,
        width=0.5,
    )
    right.bar_label(
        bars,
        labels=[f"{g['mean_gain']:+.3f}\n{int(g['improved'])}/{int(g['jobs'])} up" for g in later],
        fontsize=8,
    )
    right.axhline(0, color="#888", linewidth=0.8)
    right.set_xticks(ks)
    right.set_xlim(0.5, max(ks) + 0.5)
    right.margins(y=0.3)
    right.set_xlabel("iteration")
    right.set_ylabel("mean gain over the previous iteration")
    right.set_title("What looping again bought", fontsize=10)
    _save(fig, path)


def plot_ab(
    comparisons: Sequence[Any], path: Path, *, label_a: str = "A", label_b: str = "B"
) -> None:
    """A forest plot: B - A per metric with its confidence interval (score-like metrics)."""
    comps = [c for c in comparisons if c.higher_is_better]
    fig = _figure(7.0, 0.5 * len(comps) + 1.4)
    ax = fig.subplots()
    ys = list(range(len(comps)))[::-1]
    for y, c in zip(ys, comps, strict=True):
        colour = (
            "#2e9c5a"
            if c.significant and c.diff > 0
            else ("#c62828" if c.significant else "#666666")
        )
        ax.plot([c.ci_low, c.ci_high], [y, y], color=colour, linewidth=2)
        ax.plot([c.diff], [y], "o", color=colour)
    ax.axvline(0, color="#999", linewidth=0.8)
    ax.set_yticks(ys, [f"{c.metric} (n={c.n})" for c in comps])
    ax.set_xlabel(
        f"{label_b}  minus  {label_a}  (mean, {comps[0].confidence:.0%} CI)"
        if comps
        else "difference"
    )
    ax.set_title("A/B: paired bootstrap", fontsize=10)
    _save(fig, path)


def write_ab_report(
    comparisons: Sequence[Any], out_dir: Path | str, *, label_a: str = "A", label_b: str = "B"
) -> Path:
    """``ab.md`` (the table of ``ragrelay.evals.ab.render_comparisons``) and ``ab.png`` (forest plot)."""
    from ragrelay.evals.ab import render_comparisons

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = f"# A/B\n\n{render_comparisons(comparisons, label_a=label_a, label_b=label_b)}"
    if any(c.higher_is_better for c in comparisons):
        plot_ab(comparisons, out / "ab.png", label_a=label_a, label_b=label_b)
        text += "\n![ab.png](ab.png)\n"
    path = out / "ab.md"
    path.write_text(text, encoding="utf-8")
    return path


# -- the report ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value)


# Data in a Markdown table cell: `|` would end the cell, `[`/`]` could make a link (to
# `javascript:` in renderers that do not filter), and raw HTML passes through most Markdown
# renderers, so `<`, `>`, `&` become entities (shown as themselves).
_MD_CELL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\n": " ",
        "\r": " ",
    }
)


def _md_escape(text: str) -> str:
    return text.translate(_MD_CELL)


def render_markdown(
    rows: Sequence[Row],
    summary: Mapping[str, Any],
    plots: Sequence[str],
    *,
    title: str = "Eval report",
    worst: int = 10,
) -> str:
    lines = [
        f"# {_md_escape(title)}",
        "",
        f"{len(rows)} questions.",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {_md_escape(str(k))} | {_fmt(v)} |" for k, v in summary.items()]
    columns = score_columns(rows)
    if columns:
        lines += [
            "",
            "## Scores",
            "",
            "| score | mean | p10 | median | p90 | n |",
            "|---|---|---|---|---|---|",
        ]
        for name, vals in columns.items():
            lines.append(
                f"| {_md_escape(name)} | {sum(vals) / len(vals):.3f} | "
                f"{percentile(vals, 10):.3f} "
                f"| {percentile(vals, 50):.3f} | {percentile(vals, 90):.3f} "
                f"| {len(vals)} |"
            )
    lat = [float(r["latency_s"]) for r in rows if r.get("latency_s") is not None]
    if lat:
        lines += [
            "",
            "## Latency",
            "",
            "| p50 | p95 | p99 | max |",
            "|---|---|---|---|",
            f"| {percentile(lat, 50):.3f} s | {percentile(lat, 95):.3f} s | "
            f"{percentile(lat, 99):.3f} s | {max(lat):.3f} s |",
        ]
    stops = Counter(str(r.get("stop_reason")) for r in rows if r.get("stop_reason"))
    iters = Counter(int(r["iterations"]) for r in rows if r.get("iterations"))
    if stops or iters:
        lines += ["", "## Loop", ""]
        if iters:
            lines.append(
                "Iterations: "
                + ", ".join(f"{k}: {v} job(s)" for k, v in sorted(iters.items()))
                + "."
            )
        if stops:
            lines.append(
                "Stop reasons: "
                + ", ".join(f"{_md_escape(k)}: {v}" for k, v in stops.most_common())
                + "."
            )
    gain = iteration_gain(rows)
    if gain:
        lines += [
            "",
            "| iteration | jobs | mean score | mean gain | improved |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {int(g['iteration'])} | {int(g['jobs'])} | {g['mean_score']:.3f} | "
            f"{'—' if math.isnan(g['mean_gain']) else format(g['mean_gain'], '+.3f')} | "
            f"{int(g['improved'])} |"
            for g in gain
        ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    key = _worst_key(rows)
    if key:
        ranked = sorted(
            (r for r in rows if _value(r, key) is not None),
            key=lambda r: float(_value(r, key) or 0.0),
        )[:worst]
        lines += [
            "",
            f"## Lowest {_md_escape(key)}",
            "",
            f"| id | {_md_escape(key)} | stop reason | question |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_md_escape(str(r.get('id')))} | {_fmt(float(_value(r, key) or 0.0))} | "
            f"{_md_escape(str(r.get('stop_reason', '')))} | "
            f"{_md_escape(str(r.get('question', ''))[:120])} |"
            for r in ranked
        ]
    return "\n".join(lines) + "\n"


def _value(row: Row, key: str) -> float | None:
    for part in ("metrics", "scores"):
        found = (row.get(part) or {}).get(key)
        if found is not None:
            return float(found)
    return None


def _worst_key(rows: Sequence[Row]) -> str | None:
    names = score_columns(rows)
    for preferred in ("f1", "token_f1", "faithfulness"):
        if preferred in names:
            return preferred
    return next(iter(names), None)


def write_report(
    rows: Sequence[Row],
    summary: Mapping[str, Any],
    out_dir: Path | str,
    *,
    title: str = "Eval report",
) -> Path:
    """Write ``report.md`` and its PNG plots into ``out_dir``; returns the report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots: list[str] = []
    columns = score_columns(rows)
    if columns:
        plot_scores(columns, out / "scores.png")
        plots.append("scores.png")
    lat = [float(r["latency_s"]) for r in rows if r.get("latency_s") is not None]
    if lat:
        plot_latency_cdf(lat, out / "latency_cdf.png")
        plots.append("latency_cdf.png")
    iters = [int(r["iterations"]) for r in rows if r.get("iterations")]
    if iters:
        plot_iterations(iters, out / "iterations.png")
        plots.append("iterations.png")
    gain = iteration_gain(rows)
    if gain:
        plot_iteration_gain(gain, out / "iteration_gain.png")
        plots.append("iteration_gain.png")
    path = out / "report.md"
    path.write_text(render_markdown(rows, summary, plots, title=title), encoding="utf-8")
    return path


# -- commands --------------------------------------------------------------------------------


@click.command("report")
@click.argument("rows_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for report.md and the PNG plots.",
)
@click.option("--title", default="Eval report", show_default=True)
def report_command(rows_file: Path, out_dir: Path, title: str) -> None:
    """Write a Markdown report with plots from per-question rows (JSON lines)."""
    rows = read_rows(rows_file)
    if not rows:
        raise UsageError(f"{rows_file}: no rows")
    path = write_report(rows, summarize(rows), out_dir, title=title)
    click.echo(f"wrote {path}")


@click.command("ab")
@click.argument("rows_a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("rows_b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Metric to compare (repeatable; default: every one both runs have).",
)
@click.option("--label-a", default="A", show_default=True)
@click.option("--label-b", default="B", show_default=True)
@click.option("--resamples", type=click.IntRange(100, 1_000_000), default=10_000, show_default=True)
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write ab.md and ab.png here.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per metric.")
def ab_command(
    rows_a: Path,
    rows_b: Path,
    metrics: tuple[str, ...],
    label_a: str,
    label_b: str,
    resamples: int,
    confidence: float,
    out_dir: Path | None,
    as_json: bool,
) -> None:
    """Compare two runs on the same questions: B - A per metric, paired bootstrap CI."""
    from ragrelay.evals.ab import compare_runs, render_comparisons

    a, b = read_rows(rows_a), read_rows(rows_b)
    names = list(metrics) or sorted((set(score_columns(a)) & set(score_columns(b))) | {"latency_s"})
    comps = compare_runs(a, b, names, resamples=resamples, confidence=confidence)
    if not comps:
        raise UsageError("the two runs share no question with these metrics")
    if as_json:
        for c in comps:
            click.echo(json.dumps(c.to_dict()))
    else:
        click.echo(render_comparisons(comps, label_a=label_a, label_b=label_b), nl=False)
    if out_dir is not None:
        write_ab_report(comps, out_dir, label_a=label_a, label_b=label_b)


__all__ = [
    "ab_command",
    "ecdf",
    "iteration_gain",
    "iteration_scores",
    "percentile",
    "plot_ab",
    "read_rows",
    "render_markdown",
    "report_command",
    "row_from_result",
    "score_columns",
    "summarize",
    "write_ab_report",
    "write_report",
]
