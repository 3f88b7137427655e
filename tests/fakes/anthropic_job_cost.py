"""Measure what whole jobs cost with the Anthropic provider, on the loopback fake.

Runs the embedded pipeline (the same task code as a cluster) with the provider pointed at
:class:`tests.fakes.anthropic_server.FakeAnthropicServer`, ingests a corpus, asks questions,
and prints per-job token counts and the cost the price table gives them. Token counts are
the fake's (``ceil(chars / 4)``), not Claude's tokenizer; the fake caches any prefix length,
so the script also prints the cost with no caching at all (an upper bound).

    python -m tests.fakes.anthropic_job_cost --corpus ../shared/data/squad/corpus.jsonl.gz \\
        --questions ../shared/data/squad/questions.jsonl --n 20 --revise-every 4 [--cache-minimums] [--no-cache-context]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from tests.fakes.anthropic_server import DOCUMENTED_CACHE_MINIMUMS, FakeAnthropicServer, Reply
from workers.providers.pricing import PriceTable

REVISE = Reply(
    tool_input={
        "faithfulness": 0.9,
        "relevance": 0.6,
        "completeness": 0.4,
        "verdict": "revise",
        "feedback": "The answer misses part of the question; look for more detail.",
        "suggested_rewrite": None,
    }
)


def questions_from(path: Path, n: int) -> list[str]:
    out: list[str] = []
    with path.open() as fh:
        for line in fh:
            row = json.loads(line)
            out.append(str(row.get("question") or row.get("text")))
            if len(out) >= n:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--questions", required=True)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--revise-every", type=int, default=0, help="script a revise verdict")
    parser.add_argument("--generation-model", default="claude-sonnet-4-6")
    parser.add_argument("--small-model", default="claude-haiku-4-5")
    parser.add_argument(
        "--cache-minimums",
        action="store_true",
        help="the fake caches only prefixes past the API's documented minimum lengths",
    )
    parser.add_argument(
        "--no-cache-context",
        action="store_true",
        help="mark only the prompt prefix for caching, not the retrieved context",
    )
    args = parser.parse_args(argv)

    prices = {
        "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_read": 0.10, "cache_write": 1.25},
        "claude-sonnet-4-6": {
            "input": 3.0,
            "output": 15.0,
            "cache_read": 0.30,
            "cache_write": 3.75,
        },
    }
    table = PriceTable.from_mapping(prices)
    minimums = DOCUMENTED_CACHE_MINIMUMS if args.cache_minimums else None
    with (
        FakeAnthropicServer(api_key="fake-key", min_cache_tokens=minimums) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ.update(
            {
                "RAGRELAY_DATA_DIR": tmp,
                "RAGRELAY_ANTHROPIC_API_KEY": "fake-key",
                "RAGRELAY_ANTHROPIC_BASE_URL": server.base_url,
                "RAGRELAY_ANTHROPIC_MODEL_ANALYSIS": args.small_model,
                "RAGRELAY_ANTHROPIC_MODEL_EVALUATION": args.small_model,
                "RAGRELAY_ANTHROPIC_MODEL_GENERATION": args.generation_model,
                "RAGRELAY_ANTHROPIC_PRICES": json.dumps(prices),
                "RAGRELAY_LOG_LEVEL": "ERROR",
                "RAGRELAY_ANTHROPIC_CACHE_CONTEXT": "false" if args.no_cache_context else "true",
            }
        )
        os.environ.pop("RAGRELAY_REDIS_URL", None)
        from click.testing import CliRunner

        from ragrelay.cli.app import cli

        runner = CliRunner()
        ingested = runner.invoke(cli, ["ingest", args.corpus, "--json"])
        if ingested.exit_code:
            print(ingested.output, file=sys.stderr)
            return 1
        rows = []
        for i, question in enumerate(questions_from(Path(args.questions), args.n)):
            if args.revise_every and i % args.revise_every == 0:
                server.enqueue(REVISE, tool="submit_evaluation")
            before = len(server.message_requests())
            out = runner.invoke(cli, ["ask", "--json", question])
            if out.exit_code:
                print(out.output[-2000:], file=sys.stderr)
                return 1
            result = json.loads(out.output.strip().splitlines()[-1])
            calls = server.message_requests()[before:]
            uncached = 0.0
            for req in calls:
                u = req.response["usage"]
                price = table.price(req.model or "")
                all_input = (
                    u["input_tokens"]
                    + u["cache_read_input_tokens"]
                    + u["cache_creation_input_tokens"]
                )
                uncached += price.cost(input_tokens=all_input, output_tokens=u["output_tokens"])
            usage = result["usage"]
            rows.append(
                {
                    "iterations": result["iterations"],
                    "stop_reason": result["stop_reason"],
                    **{k: usage[k] for k in ("llm_calls", "input_tokens", "output_tokens")},
                    "cache_read": usage["cache_read_tokens"],
                    "cache_write": usage["cache_write_tokens"],
                    "cost_usd": usage["cost_usd"],
                    "cost_no_cache_usd": round(uncached, 8),
                }
            )
        for iterations in sorted({r["iterations"] for r in rows}):
            group = [r for r in rows if r["iterations"] == iterations]
            summary = {"iterations": iterations, "jobs": len(group)}
            for key in (
                "llm_calls",
                "input_tokens",
                "output_tokens",
                "cache_read",
                "cache_write",
                "cost_usd",
                "cost_no_cache_usd",
            ):
                summary[f"mean_{key}"] = round(statistics.fmean(r[key] for r in group), 6)
            summary["stop_reasons"] = sorted({r["stop_reason"] for r in group})
            print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
