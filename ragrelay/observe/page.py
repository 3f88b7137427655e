"""``render_timeline(result, trace) -> str``: one self-contained HTML page per job.

Inline CSS, inline SVG drawn on the server, a few lines of inline JavaScript (click a bar to
find its row); no external asset of any kind, so it works offline and can be saved as a file.
Served, it carries ``PAGE_CSP``: the inline script and style are allowed by their hashes,
nothing else runs (no ``'unsafe-inline'``, no ``style=`` attributes). Text goes through
``esc`` and links through ``link`` (http/https only): see ``ragrelay.observe.safe_html``.
"""

from __future__ import annotations

import json
import math

from ragrelay.observe.safe_html import csp_hash, esc, link
from ragrelay.observe.timeline import Bar, Marker, Timeline, build_timeline
from schemas import JobResult, TraceEvent

STAGE_COLOURS = {
    "analysis": "#7b5ea7",
    "retrieval": "#2f76b5",
    "generation": "#2e9c5a",
    "evaluation": "#e0892b",
}
MARKER_COLOURS = {
    "failed": "#c62828",
    "timeout": "#ef6c00",
    "resent": "#1565c0",
    "guardrail": "#6a1b9a",
}
LABEL_W = 190
PLOT_W = 820
AXIS_H = 28
ITER_H = 22
LANE_H = 38
BAR_H = 20
MIN_BAR_PX = 3.0

BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;
color:#1d232b;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px} .question{font-size:16px;margin:4px 0 6px} h2{font-size:16px;margin:28px 0 8px}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px}
.sub{color:#5b6570;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;min-width:110px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:#66707b}
.card .v{font-size:17px;font-weight:600}
.status-succeeded{color:#1b7f3b}.status-failed{color:#c62828}
.status-budget_exhausted{color:#b26a00}.status-running{color:#1565c0}
.panel{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:10px;overflow-x:auto}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
svg .lane-label{font-family:ui-monospace,monospace;font-size:11px}
#timeline{width:100%;height:auto} svg text.bar-label{fill:#fff;pointer-events:none}
.step-bar{cursor:pointer;stroke:#0003} .step-bar:hover{stroke:#000;stroke-width:1.5}
.step-bar.sel{stroke:#000;stroke-width:2.5}
.wait{stroke:#9aa3ad;stroke-width:1.5;stroke-dasharray:3 2}
table{border-collapse:collapse;width:100%;background:#fff}
td.num,th{white-space:nowrap}
th,td{border-bottom:1px solid #e6e9ed;padding:4px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:#55606b;background:#f3f5f7} td.num{text-align:right}
tr.sel td{background:#fff6d6}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin:0 4px 0 12px;
vertical-align:-1px}
.answer{background:#fff;border-left:4px solid #2e9c5a;padding:10px 14px;white-space:pre-wrap}
.error{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px}
ol.cites li{margin-bottom:6px} .quote{color:#4a545e;font-style:italic}
.gain-pos{color:#1b7f3b}.gain-neg{color:#c62828} .nolink{color:#66707b;font-size:12px}
"""
# Colours as classes, not style= attributes, which a CSP without 'unsafe-inline' blocks.
CSS = BASE_CSS + "".join(
    f".swatch-{name}{{background:{colour}}}\n"
    for name, colour in {**STAGE_COLOURS, **MARKER_COLOURS}.items()
)

JS = """
document.querySelectorAll('.step-bar').forEach(function(bar){
  bar.addEventListener('click', function(){
    document.querySelectorAll('.sel').forEach(function(e){e.classList.remove('sel');});
    bar.classList.add('sel');
    var row = document.getElementById('row-' + bar.dataset.index);
    if (row) { row.classList.add('sel'); row.scrollIntoView({block:'nearest'}); }
  });
});
"""


# What the served page may run and style: exactly its own inline script and stylesheet.
PAGE_CSP = (
    f"default-src 'none'; script-src {csp_hash(JS)}; style-src {csp_hash(CSS)}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_e = esc


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _nice_step(span_ms: float, target: int = 8) -> float:
    raw = max(span_ms, 1e-3) / target
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power  # pragma: no cover - the loop always returns


class _Scale:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0 = t0
        self.span = max(t1 - t0, 1e-6)

    def x(self, t: float) -> float:
        return LABEL_W + (t - self.t0) / self.span * PLOT_W


def _svg(tl: Timeline) -> str:
    scale = _Scale(tl.t0, tl.t1)
    lane_top = AXIS_H + ITER_H + 6
    height = lane_top + max(len(tl.lanes), 1) * LANE_H + 8
    width = LABEL_W + PLOT_W + 20
    out = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of job {_e(tl.job_id)}">'
    ]
    # iteration bands behind everything
    for i, it in enumerate(tl.iterations):
        x0, x1 = scale.x(it.start), scale.x(it.end)
        fill = "#eef3fa" if i % 2 == 0 else "#f6f1fa"
        out.append(
            f'<rect class="iteration-band" data-iteration="{it.number}" x="{x0:.1f}" '
            f'y="{AXIS_H}" width="{max(x1 - x0, 1):.1f}" height="{height - AXIS_H - 4}" '
            f'fill="{fill}"/>'
        )
        label = f"iteration {it.number}" + (f" · {it.verdict}" if it.verdict else "")
        if it.mean_score is not None:
            label += f" · {it.mean_score:.2f}"
        room = LABEL_W + PLOT_W + 16 - x0
        if len(label) * 6.2 > max(x1 - x0, room):
            label = f"#{it.number}"
        out.append(f'<text x="{x0 + 4:.1f}" y="{AXIS_H + 15}">{_e(label)}</text>')
    # axis
    span_ms = (tl.t1 - tl.t0) * 1000.0
    step = _nice_step(span_ms)
    tick = 0.0
    while tick <= span_ms + 1e-9:
        x = scale.x(tl.t0 + tick / 1000.0)
        out.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height - 4}" '
            f'stroke="#d5dae0" stroke-width="0.7"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{AXIS_H - 10}" text-anchor="middle">'
            f"{_e(_ms(tick) if tick else '0')}</text>"
        )
        tick += step
    # lanes
    for i, lane in enumerate(tl.lanes):
        y = lane_top + i * LANE_H
        out.append(
            f'<line x1="0" y1="{y + LANE_H:.1f}" x2="{width}" y2="{y + LANE_H:.1f}" '
            f'stroke="#e3e7ec"/>'
        )
        out.append(
            f'<text class="lane-label" x="6" y="{y + LANE_H / 2 + 4:.1f}">'
            f"{_e(_fit(tl.lane_label(lane), 28))}<title>{_e(tl.lane_label(lane))} "
            f"({_e(lane)})</title></text>"
        )
    lane_y = {lane: lane_top + i * LANE_H for i, lane in enumerate(tl.lanes)}
    for index, bar in enumerate(tl.bars):
        out.extend(_bar(bar, index, scale, lane_y[bar.lane], tl.lane_label(bar.lane)))
    for marker in tl.markers:
        out.append(_marker(marker, scale, lane_y.get(marker.lane, lane_top)))
    out.append("</svg>")
    return "\n".join(out)


def _bar(bar: Bar, index: int, scale: _Scale, y: float, lane_label: str) -> list[str]:
    x0 = scale.x(bar.start)
    w = max(scale.x(bar.end) - x0, MIN_BAR_PX)
    top = y + (LANE_H - BAR_H) / 2
    mid = top + BAR_H / 2
    parts: list[str] = []
    if bar.dispatched_at is not None and bar.start > bar.dispatched_at:
        parts.append(
            f'<line class="wait" x1="{scale.x(bar.dispatched_at):.1f}" y1="{mid:.1f}" '
            f'x2="{x0:.1f}" y2="{mid:.1f}"/>'
        )
    tip = [
        f"{bar.step_id.partition('/')[2] or bar.step_id}",
        f"{bar.stage} on {lane_label} ({bar.lane})",
        f"ran {_ms(bar.duration_ms)}",
    ]
    if bar.wait_ms is not None:
        tip.append(f"queued {_ms(bar.wait_ms)}")
    if bar.attempt > 1:
        tip.append(f"attempt {bar.attempt}")
    tip.append(bar.note)
    if bar.tokens or bar.cost_usd:
        tip.append(f"{bar.tokens} tokens, ${bar.cost_usd:.4f}")
    if bar.scores:
        tip.append(", ".join(f"{k} {v:.2f}" for k, v in bar.scores.items()))
    if bar.prompt_version:
        tip.append(f"prompt {bar.prompt_version}")
    colour = STAGE_COLOURS.get(bar.stage, "#888")
    parts.append(
        f'<rect class="step-bar stage-{_e(bar.stage)}" data-index="{index}" '
        f'data-step-id="{_e(bar.step_id)}" data-stage="{_e(bar.stage)}" '
        f'data-lane="{_e(bar.lane)}" data-iteration="{bar.iteration}" '
        f'data-outcome="{_e(bar.outcome)}" data-duration-ms="{bar.duration_ms:.3f}" '
        f'x="{x0:.1f}" y="{top:.1f}" width="{w:.1f}" height="{BAR_H}" rx="3" fill="{colour}">'
        f"<title>{_e(chr(10).join(tip))}</title></rect>"
    )
    if w >= 7 * len(bar.stage) + 12:
        label = bar.stage if bar.stage != "evaluation" else f"eval · {bar.outcome}"
        parts.append(
            f'<text class="bar-label" x="{x0 + 4:.1f}" y="{mid + 4:.1f}" fill="#fff">'
            f"{_e(label)}</text>"
        )
    return parts


def _marker(m: Marker, scale: _Scale, y: float) -> str:
    x = scale.x(m.at)
    cy = y + LANE_H / 2
    colour = MARKER_COLOURS.get(m.kind, "#555")
    title = f"<title>{_e(m.label)}</title>"
    attrs = f'class="marker marker-{_e(m.kind)}" data-kind="{_e(m.kind)}"'
    if m.kind == "failed":
        return (
            f'<g {attrs} stroke="{colour}" stroke-width="3">{title}'
            f'<line x1="{x - 6:.1f}" y1="{cy - 6:.1f}" x2="{x + 6:.1f}" y2="{cy + 6:.1f}"/>'
            f'<line x1="{x - 6:.1f}" y1="{cy + 6:.1f}" x2="{x + 6:.1f}" y2="{cy - 6:.1f}"/>'
            f"</g>"
        )
    if m.kind == "timeout":
        return (
            f'<path {attrs} fill="{colour}" d="M{x:.1f} {cy - 8:.1f} L{x + 8:.1f} {cy:.1f} '
            f'L{x:.1f} {cy + 8:.1f} L{x - 8:.1f} {cy:.1f} Z">{title}</path>'
        )
    if m.kind == "guardrail":
        return (
            f'<path {attrs} fill="{colour}" d="M{x:.1f} {cy - 8:.1f} L{x + 7:.1f} '
            f'{cy + 6:.1f} L{x - 7:.1f} {cy + 6:.1f} Z">{title}</path>'
        )
    return f'<circle {attrs} cx="{x:.1f}" cy="{cy:.1f}" r="6" fill="{colour}">{title}</circle>'


def _cards(tl: Timeline, result: JobResult | None) -> str:
    usage = tl.usage
    tokens = sum(
        int(usage.get(f"{k}_tokens", 0) or 0)
        for k in ("input", "output", "cache_read", "cache_write")
    )
    cards = [
        ("status", f'<span class="status-{_e(tl.status)}">{_e(tl.status)}</span>'),
        ("stop reason", _e(tl.stop_reason or "—")),
        ("iterations", _e(result.iterations if result else len(tl.iterations))),
        ("steps", _e(len(tl.bars))),
        ("wall time", _e(_ms(tl.duration_ms))),
        ("LLM calls", _e(usage.get("llm_calls", 0))),
        ("tokens", _e(f"{tokens:,}")),
        ("cost", _e(f"${float(usage.get('cost_usd', 0.0) or 0.0):.4f}")),
    ]
    if result and result.scores:
        mean = sum(result.scores.values()) / len(result.scores)
        cards.append(("score (mean)", _e(f"{mean:.2f}")))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
            for k, v in cards
        )
        + "</div>"
    )


def _iteration_table(tl: Timeline) -> str:
    metrics = sorted({k for it in tl.iterations for k in it.scores})
    if not metrics:
        return ""
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    rows = []
    previous: float | None = None
    for it in tl.iterations:
        cells = "".join(
            f'<td class="num">{it.scores[m]:.2f}</td>' if m in it.scores else "<td></td>"
            for m in metrics
        )
        mean = it.mean_score
        gain = ""
        if mean is not None and previous is not None:
            delta = mean - previous
            gain = f'<span class="gain-{"pos" if delta >= 0 else "neg"}">{delta:+.2f}</span>'
        rows.append(
            f"<tr><td>{it.number}</td><td>{_e(it.verdict or '')}</td>{cells}"
            f'<td class="num">{"" if mean is None else f"{mean:.2f}"}</td>'
            f'<td class="num">{gain}</td><td class="num">'
            f"{_e(_ms((it.end - it.start) * 1000))}</td></tr>"
        )
        previous = mean if mean is not None else previous
    return (
        '<h2>Scores by iteration</h2><table id="iterations"><tr><th>iteration</th>'
        f"<th>verdict</th>{head}<th>mean</th><th>gain</th><th>time</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _steps_table(tl: Timeline) -> str:
    rows = []
    for i, b in enumerate(tl.bars):
        rows.append(
            f'<tr id="row-{i}"><td class="mono">{_e(b.step_id.partition("/")[2] or b.step_id)}'
            f'</td><td>{_e(b.stage)}</td><td class="mono">{_e(tl.lane_label(b.lane))}</td>'
            f'<td class="num">{_e(b.attempt)}</td><td class="num">{_e(_ms(b.wait_ms))}</td>'
            f'<td class="num">{_e(_ms(b.duration_ms))}</td><td>{_e(b.outcome)}</td>'
            f'<td>{_e(b.note)}</td><td class="num">{b.tokens}</td>'
            f'<td class="num">${b.cost_usd:.4f}</td><td class="mono">'
            f"{_e(b.prompt_version or '')}{' · ' + _e(b.model) if b.model else ''}</td></tr>"
        )
    events = "".join(
        f"<tr><td>{_e(_ms((m.at - tl.t0) * 1000))}</td><td>{_e(m.kind)}</td>"
        f'<td class="mono">{_e(tl.lane_label(m.lane))}</td><td>{_e(m.label)}</td></tr>'
        for m in tl.markers
    )
    table = (
        '<h2>Steps</h2><table id="steps"><tr><th>step</th><th>stage</th><th>lane</th>'
        "<th>attempt</th><th>queued</th><th>ran</th><th>outcome</th><th>what</th>"
        "<th>tokens</th><th>cost</th><th>prompt · model</th></tr>" + "".join(rows) + "</table>"
    )
    if events:
        table += (
            '<h2>Failures, timeouts, re-sends</h2><table id="markers"><tr><th>at</th>'
            "<th>kind</th><th>lane</th><th>what</th></tr>" + events + "</table>"
        )
    return table


def _citation_link(url: str) -> str:
    return link(url, "link") or (
        '<span class="nolink" title="only http(s) addresses are linked">(not linked)</span>'
    )


def _answer(result: JobResult | None) -> str:
    if result is None:
        return "<h2>Answer</h2><p>The job is still running; this page refreshes itself.</p>"
    parts = ["<h2>Answer</h2>"]
    if result.error:
        parts.append(f'<div class="error">{_e(result.error)}</div>')
    parts.append(f'<div class="answer" id="answer">{_e(result.answer or "(no answer)")}</div>')
    if result.citations:
        items = "".join(
            f"<li><code>{_e(c.chunk_id)}</code> — {_e(c.title or c.doc_id)}"
            + (f", page {c.page}" if c.page else "")
            + (f", {_e(c.section)}" if c.section else "")
            + (f" {_citation_link(c.url)}" if c.url else "")
            + (f'<div class="quote">“{_e(c.quote)}”</div>' if c.quote else "")
            + "</li>"
            for c in result.citations
        )
        parts.append(f'<h2>Citations</h2><ol class="cites" id="citations">{items}</ol>')
    if result.degraded:
        parts.append("<p><b>Degraded:</b> " + _e("; ".join(result.degraded)) + "</p>")
    return "".join(parts)


def _legend() -> str:
    stages = "".join(f'<span class="swatch swatch-{_e(s)}"></span>{_e(s)}' for s in STAGE_COLOURS)
    marks = "".join(f'<span class="swatch swatch-{_e(k)}"></span>{_e(k)}' for k in MARKER_COLOURS)
    return (
        f'<div class="sub">{stages} &nbsp;·&nbsp; markers: {marks} &nbsp;·&nbsp; '
        "dashed line: waiting in the queue</div>"
    )


def _json_script(trace: list[TraceEvent]) -> str:
    data = json.dumps([e.to_dict() for e in trace], separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="trace-data">{data}</script>'


def _question(tl: Timeline) -> str:
    if not tl.question:
        return ""
    return f'<p class="question" id="question">{_e(tl.question)}</p>'


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_timeline(result: JobResult | None, trace: list[TraceEvent]) -> str:
    """The whole page for one job; ``result`` is None while the job runs (the page refreshes)."""
    tl = build_timeline(trace, result)
    refresh = '<meta http-equiv="refresh" content="2">' if result is None else ""
    sub = " · ".join(
        x
        for x in (
            f"tenant {tl.tenant}" if tl.tenant else "",
            f"kind {tl.kind}" if tl.kind else "",
            f"{len(tl.lanes)} lane(s)",
            f"{len(trace)} trace events",
        )
        if x
    )
    budget = ""
    if tl.budget:
        budget = (
            '<div class="sub">budget: '
            + _e(", ".join(f"{k} {v}" for k, v in tl.budget.items() if k != "schema_version"))
            + "</div>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f"{refresh}<title>ragrelay job {_e(tl.job_id)}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Job <code>{_e(tl.job_id)}</code></h1>{_question(tl)}"
        f'<div class="sub">{_e(sub)}</div>{budget}'
        f"{_cards(tl, result)}<h2>Timeline</h2>{_legend()}"
        f'<div class="panel">{_svg(tl)}</div>{_iteration_table(tl)}{_answer(result)}'
        f"{_steps_table(tl)}{_json_script(trace)}<script>{JS}</script></body></html>"
    )


__all__ = ["CSS", "JS", "PAGE_CSP", "render_timeline"]
