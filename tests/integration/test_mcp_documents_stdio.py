"""``add_document`` / ``delete_document`` over stdio (``ragrelay mcp``, embedded: the
documents task runs in the server process) through the documents API's own code."""

from __future__ import annotations

from typing import Any

from mcp import Client

from tests.integration.test_mcp_stdio import env, run

__all__ = ["env"]

TEXT = "The Halcyon ferry leaves pier 31 at dawn; tickets are sold at the blue kiosk."


def test_add_search_delete_over_stdio(env: dict[str, str]) -> None:
    async def acme(client: Client) -> Any:
        added = await client.call_tool(
            "add_document", {"doc_id": "halcyon", "title": "Ferry", "text": TEXT}
        )
        assert not added.is_error, added.content
        found = await client.call_tool("search_documents", {"query": "Halcyon ferry pier"})
        blank = await client.call_tool("add_document", {"text": "  "})
        gone = await client.call_tool("delete_document", {"doc_id": "halcyon"})
        after = await client.call_tool("search_documents", {"query": "Halcyon ferry pier"})
        again = await client.call_tool("delete_document", {"doc_id": "halcyon"})
        return added, found, blank, gone, after, again

    added, found, blank, gone, after, again = run(env, "acme", acme)
    assert added.structured_content["doc_id"] == "halcyon"
    assert any(h["doc_id"] == "halcyon" for h in found.structured_content["hits"])
    assert blank.is_error and "blank text" in blank.content[0].text
    assert not gone.is_error and gone.structured_content["deleted"] is True, gone.content
    assert not any(h["doc_id"] == "halcyon" for h in after.structured_content["hits"])
    assert again.is_error and "no document halcyon" in again.content[0].text


def test_another_tenant_never_finds_or_deletes_it(env: dict[str, str]) -> None:
    async def acme(client: Client) -> Any:
        return await client.call_tool("add_document", {"doc_id": "harbour", "text": TEXT})

    assert not run(env, "acme", acme).is_error

    async def globex(client: Client) -> Any:
        found = await client.call_tool("search_documents", {"query": "Halcyon ferry pier"})
        refused = await client.call_tool("delete_document", {"doc_id": "harbour"})
        return found, refused

    found, refused = run(env, "globex", globex)
    assert found.structured_content["hits"] == []
    assert refused.is_error and "no document harbour" in refused.content[0].text
