"""Every command of the README's table after only `make demo` (the base install, no extras).

The extras' modules are blocked by an import hook in a real subprocess, as if they had never
been installed: `--help` works everywhere, and a command whose extra is missing exits 2
with one line naming it (issue 22, items 1 and 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragrelay.cli.lazy import EXTRA_OF_MODULE

pytestmark = pytest.mark.e2e

#: Run the CLI with every optional extra's modules missing (ModuleNotFoundError on import).
BASE_INSTALL = f"""
import sys
from importlib.abc import MetaPathFinder

BLOCKED = {sorted(EXTRA_OF_MODULE)!r}

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

for mod in [m for m in sys.modules if m.partition(".")[0] in BLOCKED]:
    del sys.modules[mod]
sys.meta_path.insert(0, NotInstalled())
if sys.argv[1:2] == ["--many"]:  # one interpreter, many commands: a JSON list of results
    import json
    from click.testing import CliRunner
    from ragrelay.cli import cli
    out = []
    for args in json.loads(sys.argv[2]):
        got = CliRunner().invoke(cli, args)
        crashed = got.exception is not None and not isinstance(got.exception, SystemExit)
        trace = "".join(__import__("traceback").format_exception(got.exception)) if crashed else None
        out.append({{"args": args, "code": got.exit_code, "output": got.output, "exception": trace}})
    print(json.dumps(out))
    raise SystemExit(0)
sys.argv = ["ragrelay", *sys.argv[1:]]
from ragrelay.cli import main
main()
"""

#: The README's command table, as command paths.
README_COMMANDS = [
    ["demo"],
    ["ingest"],
    ["ask"],
    ["worker"],
    ["orchestrator"],
    ["up"],
    ["trace"],
    ["healthcheck"],
    ["serve"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["inbox"],
    ["train-triage"],
    ["eval"],
    ["eval", "retrieval"],
    ["eval", "qa"],
    ["eval", "inbox"],
    ["eval", "report"],
    ["eval", "ab"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "replay"],
    ["dlq", "purge"],
    ["bench"],
    ["bench", "overhead"],
    ["bench", "latency"],
    ["bench", "mcp"],
    ["eval", "rationale"],
    ["sync"],
    ["sync", "dir"],
    ["sync", "postgres"],
    ["mcp"],
    ["prompts"],
    ["replay"],
    ["timeline"],
    ["feedback"],
    ["feedback", "export"],
]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BASE_INSTALL, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_hook_really_blocks_the_extras(base_env: dict[str, str], tmp_path: Path) -> None:
    probe = BASE_INSTALL.replace(
        "from ragrelay.cli import main\nmain()", "import sklearn  # must fail\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=base_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "No module named 'sklearn'" in out.stderr


@pytest.mark.parametrize("args", [[], ["--help"]], ids=["bare", "help"])
def test_bare_ragrelay_and_help_list_every_command(
    args: list[str], base_env: dict[str, str], tmp_path: Path
) -> None:
    out = run(args, base_env, tmp_path)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode in (0, 2) if not args else out.returncode == 0, out.stderr
    shown = out.stdout + out.stderr  # bare `ragrelay` prints its help as a usage error
    for name in {c[0] for c in README_COMMANDS}:
        assert f"  {name}" in shown, name


def test_every_readme_command_has_help_without_the_extras(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    out = run(["--many", json.dumps([[*c, "--help"] for c in README_COMMANDS])], base_env, tmp_path)
    assert out.returncode == 0, out.stderr
    failures = [
        f"{' '.join(r['args'])}: exit {r['code']}\n{r['exception'] or r['output'][-500:]}"
        for r in json.loads(out.stdout.strip().splitlines()[-1])
        if r["code"] != 0 or r["exception"] or "Usage:" not in r["output"]
    ]
    assert not failures, "\n".join(failures)


def test_eval_help_lists_inbox(base_env: dict[str, str], tmp_path: Path) -> None:
    out = run(["eval", "--help"], base_env, tmp_path)
    assert out.returncode == 0 and "  inbox" in out.stdout
    assert "pip install 'ragrelay[email]'" in out.stdout


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["serve", "--port", "0"], "gateway"),
        (["keys", "list"], None),
        (["train-triage"], "email"),
        (["inbox", "--maildir", "nowhere", "--once"], None),  # keyword rules without sklearn
        (["eval", "inbox", "--inbox", "x", "--labels", "y"], "email"),
        (["mcp", "--tenant", "acme"], "mcp"),
        (
            [
                *("sync", "postgres", "--dsn", "postgresql://x@127.0.0.1:1/x", "--tenant", "a"),
                *("--query", "SELECT 1", "--id-column", "id", "--text-column", "t"),
            ],
            "documents",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_command_whose_extra_is_missing_exits_2_naming_it(
    command: list[str], extra: str | None, base_env: dict[str, str], tmp_path: Path
) -> None:
    out = run(command, base_env, tmp_path)
    assert "Traceback" not in out.stderr, out.stderr
    if extra is None:  # runs without any extra (a usage/config error is fine, not a crash)
        assert out.returncode in (0, 2), out.stderr
        return
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert f"pip install 'ragrelay[{extra}]'" in lines[0]
