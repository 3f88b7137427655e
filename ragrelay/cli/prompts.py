"""``ragrelay prompts``: list and show the versioned prompt files."""

from __future__ import annotations

import json

import click

from bus.errors import ConfigError
from workers.prompts import list_prompts, load_prompt


@click.group("prompts")
def prompts_group() -> None:
    """The versioned prompts the Claude provider sends."""


@prompts_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--latest", is_flag=True, help="Only each prompt's highest version.")
def list_command(as_json: bool, latest: bool) -> None:
    """Every prompt: name, version, content hash, size, and the ref results record."""
    prompts = list_prompts(latest_only=latest)
    if as_json:
        for p in prompts:
            click.echo(
                json.dumps(
                    {
                        "name": p.name,
                        "version": p.version,
                        "sha256": p.sha256,
                        "ref": p.ref,
                        "chars": len(p.text),
                        "file": p.filename,
                    }
                )
            )
        return
    click.echo(f"{'NAME':<16}{'VERSION':<9}{'SHA256':<14}{'CHARS':>6}  REF")
    for p in prompts:
        click.echo(f"{p.name:<16}{'v' + str(p.version):<9}{p.sha256:<14}{len(p.text):>6}  {p.ref}")


@prompts_group.command("show")
@click.argument("name")
@click.option("--version", "version", type=int, default=None, help="Default: the highest.")
def show_command(name: str, version: int | None) -> None:
    """Print one prompt's text."""
    try:
        prompt = load_prompt(name, version)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"# {prompt.ref}")
    click.echo(prompt.text)


__all__ = ["prompts_group"]
