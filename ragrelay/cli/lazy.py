"""The one lazy command group: a command's module is imported only when that command runs.

Each entry is a loader function with a plain ``from ... import`` inside, so mypy and the
import contracts see every dependency (no module-path strings). A command that needs an
optional extra which is not installed still appears in ``--help``; running it prints one
line naming the extra to install, never "No such command".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import click

Loader = Callable[[], click.Command]

#: Third-party modules that come with an extra of the ``ragrelay`` distribution.
EXTRA_OF_MODULE: dict[str, str] = {
    "fastapi": "gateway",
    "uvicorn": "gateway",
    "starlette": "gateway",
    "sklearn": "email",
    "bs4": "email",
    "matplotlib": "eval",
    "anthropic": "anthropic",
    "weaviate": "weaviate",
    "fastapi_offline": "gateway",
    "multipart": "gateway",
    "python_multipart": "gateway",
    "mcp": "mcp",
    "gevent": "gevent",
    "pypdfium2": "documents",
    "docx": "documents",
    "lxml": "documents",
    "psycopg": "documents",
}
OUR_PACKAGES = frozenset({"schemas", "bus", "orchestrator", "workers", "ragrelay"})


class MissingExtra(click.ClickException):
    """A command needs an optional extra that is not installed: a configuration error,
    exit code 2 (README, "Exit codes"), one line naming what to install."""

    exit_code = 2


def missing_extra(command: str, exc: ModuleNotFoundError) -> click.ClickException | None:
    """The one-line error for a third-party module that is not installed, else None (a
    module of ours that cannot be found is a bug, and is re-raised as such)."""
    top = (exc.name or "").partition(".")[0]
    if not top or top in OUR_PACKAGES:
        return None
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return MissingExtra(
            f"`ragrelay {command}` needs the module {top!r}, which is not installed: "
            "pip install 'ragrelay[all]'"
        )
    return MissingExtra(
        f"`ragrelay {command}` needs the {extra!r} extra ({top} is not installed): "
        f"pip install 'ragrelay[{extra}]'"
    )


def _unavailable(name: str, error: click.ClickException) -> click.Command:
    """Stands in for a command whose module could not be imported."""

    def fail(**_: Any) -> NoReturn:
        raise error

    return click.Command(
        name,
        callback=fail,
        help=error.message,
        short_help=f"(unavailable: {error.message})",
        context_settings={"ignore_unknown_options": True},
        params=[click.Argument(["args"], nargs=-1)],
    )


class LazyGroup(click.Group):
    """A click group whose subcommands are built by loaders, on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, Loader] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Loader] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        loader = self.lazy.get(cmd_name)
        if loader is None:
            return super().get_command(ctx, cmd_name)
        try:
            return loader()
        except ModuleNotFoundError as exc:
            error = missing_extra(self._path(ctx, cmd_name), exc)
            if error is None:
                raise
            return _unavailable(cmd_name, error)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:  # an optional module imported when the command ran
            error = missing_extra(self._path(ctx, ctx.invoked_subcommand or ""), exc)
            if error is None:
                raise
            raise error from exc

    def _path(self, ctx: click.Context, cmd_name: str) -> str:
        parent = ctx.command_path.partition(" ")[2]
        return f"{parent} {cmd_name}".strip()


__all__ = ["EXTRA_OF_MODULE", "LazyGroup", "Loader", "MissingExtra", "missing_extra"]
