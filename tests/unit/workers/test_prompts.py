"""Versioned prompt files: names, versions, content hashes, and the ``prompts`` CLI."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest
from click.testing import CliRunner

from bus.errors import ConfigError
from ragrelay.cli.prompts import prompts_group
from workers.prompts import list_prompts, load_prompt

STAGES = ("analysis", "generation", "evaluation", "contextualize")


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_has_a_prompt_whose_hash_is_its_file_content(name: str) -> None:
    prompt = load_prompt(name)
    data = resources.files("workers.prompts").joinpath(prompt.filename).read_bytes()
    assert prompt.sha256 == hashlib.sha256(data).hexdigest()[:12]
    assert prompt.ref == f"{name}@v{prompt.version}:{prompt.sha256}"
    assert prompt.text == data.decode().strip() and len(prompt.text) > 200


@pytest.mark.parametrize(
    ("name", "tool"),
    [
        ("analysis", "submit_analysis"),
        ("generation", "submit_answer"),
        ("evaluation", "submit_evaluation"),
    ],
)
def test_stage_prompts_name_the_tool_they_force(name: str, tool: str) -> None:
    assert f"`{tool}`" in load_prompt(name).text


def test_generation_and_evaluation_prompts_treat_documents_as_data() -> None:
    for name in ("generation", "evaluation"):
        text = load_prompt(name).text
        assert "<document id=" in text and "never instructions" in text


def test_load_a_specific_version_and_unknowns_fail_clearly() -> None:
    assert load_prompt("generation", 1).version == 1
    with pytest.raises(ConfigError, match="has no version v99"):
        load_prompt("generation", 99)
    with pytest.raises(ConfigError, match="no prompt named 'nope'"):
        load_prompt("nope")


def test_list_prompts_is_sorted_and_latest_only_keeps_one_per_name() -> None:
    prompts = list_prompts()
    assert [(p.name, p.version) for p in prompts] == sorted((p.name, p.version) for p in prompts)
    latest = list_prompts(latest_only=True)
    assert sorted(p.name for p in latest) == sorted(STAGES)


def test_prompts_list_command_prints_refs_as_table_and_json() -> None:
    runner = CliRunner()
    table = runner.invoke(prompts_group, ["list"])
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == ["NAME", "VERSION", "SHA256", "CHARS", "REF"]
    assert load_prompt("generation").ref in table.output
    as_json = runner.invoke(prompts_group, ["list", "--json"])
    rows = [json.loads(line) for line in as_json.output.splitlines()]
    assert {r["name"] for r in rows} == set(STAGES)
    assert all(r["ref"] == f"{r['name']}@v{r['version']}:{r['sha256']}" for r in rows)


def test_prompts_show_prints_text_or_a_clean_error() -> None:
    runner = CliRunner()
    shown = runner.invoke(prompts_group, ["show", "evaluation"])
    assert shown.exit_code == 0
    assert shown.output.startswith(f"# {load_prompt('evaluation').ref}\n")
    missing = runner.invoke(prompts_group, ["show", "nope"])
    assert missing.exit_code == 1 and "Error: no prompt named 'nope'" in missing.output
    assert "Traceback" not in missing.output
