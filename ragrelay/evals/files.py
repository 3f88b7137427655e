"""Reading the eval harnesses' input files: gzipped or not, errors naming file and line."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bus.errors import UsageError


def open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for each non-blank line; invalid JSON is a UsageError."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc


def read_queries(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for lineno, row in json_lines(path):
        try:
            out[str(row["_id"])] = str(row["text"])
        except (KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{lineno}: not a query line ({exc})") from exc
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with open_text(path) as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if not row or (lineno == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # header
            if len(row) == 4:  # TREC format: qid 0 docid rel
                row = [row[0], row[2], row[3]]
            try:
                qid, doc, score = row[0], row[1], int(row[2])
            except (IndexError, ValueError) as exc:
                raise UsageError(f"{path}:{lineno}: not a qrels line") from exc
            out.setdefault(qid, {})[doc] = score
    return out


__all__ = ["json_lines", "open_text", "read_qrels", "read_queries"]
