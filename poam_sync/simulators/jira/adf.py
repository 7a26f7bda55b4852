"""The Atlassian Document Format: how v3 (Cloud) carries rich text where v2 has a string."""

from __future__ import annotations

from typing import Any

from poam_sync.simulators.jira.model import ApiError, JsonDict


def to_adf(text: str | None) -> JsonDict | None:
    """Plain text as an Atlassian Document: one paragraph per line."""
    if text is None:
        return None
    content: list[JsonDict] = []
    for line in text.split("\n"):
        para: JsonDict = {"type": "paragraph", "content": []}
        if line:
            para["content"] = [{"type": "text", "text": line}]
        content.append(para)
    return {"type": "doc", "version": 1, "content": content}


def from_adf(doc: Any) -> str:
    """The text of an Atlassian Document (paragraphs joined by newlines)."""

    def text_of(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(text_of(child) for child in node.get("content", []))

    if not isinstance(doc, dict) or doc.get("type") != "doc":
        raise ApiError(
            400,
            errors={
                "description": "Operation value must be an Atlassian Document (see the "
                "Atlassian Document Format)"
            },
        )
    return "\n".join(text_of(block) for block in doc.get("content", []))
