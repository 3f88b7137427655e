"""`ragrelay up` (issue 22, item 14): one line per process on the terminal, each process's
Celery banner, warnings and logs in its own file under the log directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cluster import REPO

pytestmark = pytest.mark.integration


def test_up_prints_one_line_per_process_and_logs_to_files(redis_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(
        PYTHONPATH=str(REPO),
        RAGRELAY_DATA_DIR=str(tmp_path / "data"),
        RAGRELAY_REDIS_URL=redis_url,
        RAGRELAY_EMBEDDER="hashing",
        RAGRELAY_KEY_PREFIX=f"up{os.getpid()}",
    )
    logs = tmp_path / "logs"
    err = (tmp_path / "up.stderr").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragrelay", "up", "--workers", "ingest=0", "--log-dir", str(logs)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        text = ""
        while "processes ready" not in text:
            assert proc.poll() is None, (tmp_path / "up.stderr").read_text()
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
            text = (tmp_path / "up.stderr").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.close()
    names = ["orchestrator", "analysis", "retrieval", "generation", "evaluation"]
    ready = re.findall(r"^  (\S+)\s+pid \d+\s+ready\s+log (\S+)$", text, re.M)
    assert sorted(n for n, _ in ready) == sorted(names), text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 2 + len(names), text  # the start line, one per process, all ready
    for banned in ("celery@", "-------------- ", "[queues]", "superuser", "Warning"):
        assert banned not in text, banned
    for name, path in ready:
        log = Path(path)
        assert log == logs / f"{name}.log"
        assert " ready." in log.read_text(errors="replace")  # Celery's own output is there
    assert proc.returncode == 0
