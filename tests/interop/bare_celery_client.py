"""A bare Celery client that knows ragrelay only by its documented contract.

Run as a subprocess; imports nothing from ragrelay (checked at the end).

    python bare_celery_client.py <redis url> '<JSON array of payloads>' [timeout s]

Prints one JSON array: [{"task_id": ..., "result": <JobResult>}, ...]
"""

from __future__ import annotations

import json
import sys

from celery import Celery

RAGRELAY_PACKAGES = ("schemas", "bus", "orchestrator", "workers")


def main() -> None:
    url, payloads_json, *rest = sys.argv[1:]
    timeout = float(rest[0]) if rest else 60.0
    app = Celery("foreign", broker=url, backend=url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    sent = [
        app.send_task("ragrelay.submit", args=[payload], queue="orchestrator")
        for payload in json.loads(payloads_json)
    ]
    out = [{"task_id": r.id, "result": r.get(timeout=timeout)} for r in sent]
    app.close()
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in RAGRELAY_PACKAGES)
    if leaked:
        raise SystemExit(f"the bare client imported ragrelay modules: {leaked}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
