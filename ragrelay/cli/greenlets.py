"""Early gevent monkey-patching for ``ragrelay worker`` on the gevent pool.

gevent must patch ``socket``, ``ssl``, ``threading``, ``time`` ... before the libraries that
use them (redis-py, kombu, httpx under the Anthropic SDK) are imported. The ``celery``
command does this for ``-P gevent`` in its own ``__main__``; ``ragrelay worker`` starts
Celery through ``worker_main``, so this module does it, from the CLI's entry points, before
the command line's modules are imported. It imports nothing but ``sys`` and ``schemas``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def worker_pool(argv: Sequence[str]) -> str | None:
    """The pool ``ragrelay worker STAGE [--pool P]`` will use, or None for other commands."""
    args = list(argv)
    if "worker" not in args:
        return None
    rest = args[args.index("worker") + 1 :]
    pool: str | None = None
    stage: str | None = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--pool" and i + 1 < len(rest):
            pool = rest[i + 1]
            i += 2
            continue
        if arg.startswith("--pool="):
            pool = arg.split("=", 1)[1]
        elif arg in ("-c", "--concurrency"):
            i += 2
            continue
        elif not arg.startswith("-") and stage is None:
            stage = arg
        i += 1
    if pool is not None:
        return pool
    if stage is None:
        return None
    from schemas import STAGE_SPECS

    spec = STAGE_SPECS.get(stage)  # type: ignore[call-overload]
    return spec.default_pool if spec is not None else None


def patch_if_gevent(argv: Sequence[str] | None = None) -> bool:
    """Monkey-patch the process when it is about to run a gevent-pool worker.

    Only a process started as the command line (``ragrelay``, ``python -m ragrelay``,
    ``python -c``) is patched: importing the CLI in a test runner changes nothing.
    """
    if argv is None:
        prog = sys.argv[0] if sys.argv else ""
        if prog not in ("-m", "-c") and not prog.replace("\\", "/").endswith(
            ("/ragrelay", "ragrelay/__main__.py")
        ):
            return False
        argv = sys.argv[1:]
    if worker_pool(argv) != "gevent":
        return False
    from gevent import monkey

    monkey.patch_all()
    return True
