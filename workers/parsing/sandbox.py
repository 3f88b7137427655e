"""Parsing in a child process with a wall-clock timeout and an address-space cap.

PDF and Office parsers are large C and XML code bases fed hostile input; a crash, a hang
or a runaway allocation in one must cost that file, not the ingest worker. The child is a
fresh interpreter (``python -m workers.parsing.sandbox``), not a fork: Celery's prefork
children are daemonic and may not fork pool workers, and a fresh process shares no state.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from workers.parsing.types import Parsed, ParseLimits, Part, UnreadableFile


def parse_isolated(path: Path, limits: ParseLimits, *, name: str | None = None) -> Parsed:
    """``parse_file`` in a child process; its failures become ``UnreadableFile`` reasons."""
    args = [sys.executable, "-m", "workers.parsing.sandbox", str(path), name or path.name]
    args.append(json.dumps(asdict(limits)))

    try:
        done = subprocess.run(
            args,
            capture_output=True,
            timeout=limits.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UnreadableFile(f"parsing took longer than {limits.timeout_s:g} s; gave up") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        what = (
            f"killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"exit {done.returncode}"
        )
        if "MemoryError" in tail[0]:
            what = f"out of memory (cap {limits.memory_mb} MB)"
        raise UnreadableFile(f"the parser crashed on this file ({what})")
    try:
        out = json.loads(done.stdout)
    except ValueError as exc:
        raise UnreadableFile("the parser returned no readable result") from exc
    if "error" in out:
        raise UnreadableFile(str(out["error"]))
    return Parsed(
        kind=out["kind"],
        title=out["title"],
        pages=out["pages"],
        parts=[Part(**p) for p in out["parts"]],
    )


def _cap(limits: ParseLimits) -> None:
    """The child caps itself before importing any parser (no ``preexec_fn``: it is unsafe
    in a threaded parent, and Celery's threads pool is one)."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _main(argv: list[str]) -> int:
    path, name, raw_limits = argv
    limits = ParseLimits(**json.loads(raw_limits))
    _cap(limits)
    from workers.parsing.files import parse_file

    try:
        parsed = parse_file(Path(path), limits, name=name)
    except UnreadableFile as exc:
        print(json.dumps({"error": exc.reason}))
        return 0
    except ModuleNotFoundError as exc:  # a worker installed without the parsers
        reason = (
            f"this ingest worker cannot read the format ({exc.name} is not installed): "
            "pip install 'ragrelay[documents]'"
        )
        print(json.dumps({"error": reason}))
        return 0
    print(
        json.dumps(
            {
                "kind": parsed.kind,
                "title": parsed.title,
                "pages": parsed.pages,
                "parts": [asdict(p) for p in parsed.parts],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
