"""The one lazy command group: loaded on use, a missing extra named in one line."""

from __future__ import annotations

import click
from click.testing import CliRunner

from ragrelay.cli import cli
from ragrelay.cli.app import LAZY_COMMANDS
from ragrelay.cli.lazy import LazyGroup


def _needs_fastapi() -> click.Command:
    raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")


@click.command("late")
def _late() -> None:
    raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")


def _group() -> click.Group:
    @click.group(cls=LazyGroup, lazy={"serve": _needs_fastapi, "late": lambda: _late})
    def root() -> None:
        pass

    return root


def test_a_command_whose_extra_is_missing_names_the_extra() -> None:
    out = CliRunner().invoke(_group(), ["serve", "--port", "1"])
    assert out.exit_code == 2  # a configuration error (README, "Exit codes")
    assert "`ragrelay serve` needs the 'gateway' extra" in out.output
    assert "pip install 'ragrelay[gateway]'" in out.output
    assert "No such command" not in out.output


def test_an_extra_imported_when_the_command_runs_is_named_too() -> None:
    out = CliRunner().invoke(_group(), ["late"])
    assert out.exit_code == 2 and "pip install 'ragrelay[email]'" in out.output


def test_help_lists_a_command_whose_extra_is_missing() -> None:
    out = CliRunner().invoke(_group(), ["--help"])
    assert out.exit_code == 0 and "serve" in out.output and "unavailable" in out.output


def test_a_missing_module_of_ours_is_a_bug_not_an_extra() -> None:
    def broken() -> click.Command:
        raise ModuleNotFoundError("No module named 'workers.nope'", name="workers.nope")

    group = LazyGroup("root", lazy={"x": broken})
    out = CliRunner().invoke(group, ["x"])
    assert isinstance(out.exception, ModuleNotFoundError)


def test_every_lazy_command_loads() -> None:
    for name, load in LAZY_COMMANDS.items():
        assert isinstance(load(), click.Command), name
    assert set(LAZY_COMMANDS) <= set(cli.list_commands(click.Context(cli)))
