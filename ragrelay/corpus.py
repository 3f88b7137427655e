"""Reading corpus files into Documents, reporting every bad line with file and line number.

Formats: BEIR-style ``.jsonl`` / ``.jsonl.gz`` (``_id``, ``title``, ``text``), ``.md`` and
``.txt`` (one document per file; title from the first heading or the file name), and
``.mbox`` / ``.mbox.gz`` (one document per message, through the inbox package's reader),
and ``.pdf``/``.docx``/``.html``/``.htm``/``.eml`` through ``workers.parsing`` (one document
per file with its pages and sections; an unreadable file is a problem with the reason).
Reading is pure: nothing is written until the caller has every document it will ingest.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from bus.errors import UsageError
from schemas import Document

SUPPORTED = (".jsonl", ".jsonl.gz", ".json", ".md", ".txt", ".mbox", ".mbox.gz")
PARSED = (".pdf", ".docx", ".html", ".htm", ".eml")


@dataclass
class Problem:
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass
class ReadReport:
    documents: int = 0
    problems: list[Problem] = field(default_factory=list)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUPPORTED:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def expand(paths: list[str]) -> list[Path]:
    """Files named, and supported files inside directories named (sorted)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and _suffix(f) in SUPPORTED + PARSED
            )
        elif p.exists():
            out.append(p)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return out


def read_documents(path: Path, report: ReadReport, *, strict: bool = False) -> Iterator[Document]:
    """Documents of one file. Bad lines go to ``report``; with ``strict`` they raise."""
    suffix = _suffix(path)
    if suffix in (".jsonl", ".jsonl.gz", ".json"):
        yield from _jsonl(path, report, strict)
    elif suffix in (".md", ".txt"):
        doc = _text_file(path, report, strict)
        if doc is not None:
            report.documents += 1
            yield doc
    elif suffix in (".mbox", ".mbox.gz"):
        from ragrelay.inbox.mbox import iter_mbox_documents

        for doc in iter_mbox_documents(path):
            report.documents += 1
            yield doc
    elif suffix in PARSED:
        doc = _parsed_file(path, report, strict)
        if doc is not None:
            report.documents += 1
            yield doc
    else:
        _problem(
            report,
            strict,
            Problem(
                str(path), None, f"unsupported file type (use {', '.join(SUPPORTED + PARSED)})"
            ),
        )


def _parsed_file(path: Path, report: ReadReport, strict: bool) -> Document | None:
    from workers.parsing import ParseLimits, UnreadableFile, parse_isolated, to_document

    try:
        parsed = parse_isolated(path, ParseLimits())
    except UnreadableFile as exc:
        _problem(report, strict, Problem(str(path), None, exc.reason))
        return None
    return to_document(parsed, doc_id=path.name, metadata={"format": parsed.kind})


def _problem(report: ReadReport, strict: bool, problem: Problem) -> None:
    if strict:
        raise UsageError(f"{problem} (rejected: --strict)")
    report.problems.append(problem)


def _jsonl(path: Path, report: ReadReport, strict: bool) -> Iterator[Document]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                doc = _json_line(path, lineno, raw, report, strict)
                if doc is not None:
                    report.documents += 1
                    yield doc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        _problem(report, strict, Problem(str(path), None, f"unreadable: {exc}"))


def _json_line(
    path: Path, lineno: int, raw: bytes, report: ReadReport, strict: bool
) -> Document | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _problem(
            report,
            strict,
            Problem(str(path), lineno, f"not UTF-8 ({exc.reason} at byte {exc.start})"),
        )
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        _problem(report, strict, Problem(str(path), lineno, f"invalid JSON: {exc.msg}"))
        return None
    if not isinstance(row, dict):
        _problem(report, strict, Problem(str(path), lineno, "expected a JSON object"))
        return None
    doc_id = row.get("_id", row.get("id"))
    body = row.get("text")
    if doc_id is None or body is None:
        missing = [k for k, v in (("_id", doc_id), ("text", body)) if v is None]
        _problem(report, strict, Problem(str(path), lineno, f"missing field {', '.join(missing)}"))
        return None
    if not str(body).strip():
        _problem(report, strict, Problem(str(path), lineno, "empty document"))
        return None
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    try:
        return Document(
            doc_id=str(doc_id), title=str(row.get("title") or ""), text=str(body), metadata=meta
        )
    except ValidationError as exc:
        _problem(
            report,
            strict,
            Problem(str(path), lineno, f"invalid document: {exc.errors()[0]['msg']}"),
        )
        return None


def _text_file(path: Path, report: ReadReport, strict: bool) -> Document | None:
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _problem(report, strict, Problem(str(path), None, f"not UTF-8 ({exc.reason})"))
        return None
    except OSError as exc:
        _problem(report, strict, Problem(str(path), None, f"unreadable: {exc.strerror}"))
        return None
    if not text.strip():
        _problem(report, strict, Problem(str(path), None, "empty document"))
        return None
    title = path.stem.replace("_", " ").replace("-", " ")
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip() or title
            break
    return Document(doc_id=path.name, title=title, text=text, source="internal")
