"""The config changes a panel's answer proposes: a row that carries a `yaml` document
(today premium-review's move of a group off a frontier model, `premium_change.py`).

A proposal is found again from the panel's answer by the row's group and model, so the
review page's URL holds only the panel's query and those two names, never the document:
the server recomputes it from the same answer the panel page showed. Its digest, carried
by the apply form, says whether the recomputed document is still the one reviewed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import yaml

from sluicegate.config.diff import DocumentKey
from sluicegate.errors import InvalidRequest, NotFound

MAX_QUERY_CHARS = 2048  # a panel page's query string; longer ones are no page's


@dataclass(frozen=True, slots=True)
class Proposal:
    panel: str
    query: str  # the panel page's query string, as its URL has it
    group: str  # the row's label
    served: str  # the frontier model the row's traffic is served by
    target: str | None  # the model it moves to
    yaml: str  # the document(s) that make the change
    keys: tuple[DocumentKey, ...]  # (type, name) of each document written

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.yaml.encode()).hexdigest()

    @property
    def review_url(self) -> str:
        return f"/ui/panels/{self.panel}/apply?{self._names()}"

    @property
    def what_if_url(self) -> str:
        return f"/ui/panels/{self.panel}/apply/what-if?{self._names()}"

    def _names(self) -> str:
        return urlencode({"q": self.query, "group": self.group, "served": self.served})


def proposals(answer: dict[str, Any], query: str) -> list[Proposal]:
    """Every row of a panel's answer (as JSON builtins) that carries a document."""
    found = []
    for row in answer.get("rows", []):
        text = row.get("yaml")
        if not text or row.get("label") is None or row.get("model") is None:
            continue
        found.append(
            Proposal(
                panel=answer["panel"],
                query=query,
                group=str(row["label"]),
                served=str(row["model"]),
                target=row.get("target"),
                yaml=text,
                keys=_keys(text),
            )
        )
    return found


def find_proposal(answer: dict[str, Any], fields: dict[str, str]) -> Proposal:
    """The proposal a review page or apply form names (`q`, `group`, `served`); 404 when
    the panel's answer no longer makes it."""
    query, group, served = (fields.get(name, "") for name in ("q", "group", "served"))
    for proposal in proposals(answer, query):
        if proposal.group == group and proposal.served == served:
            return proposal
    raise NotFound(
        f"the {answer['panel']} panel proposes no config change for {group!r} on "
        f"{served!r} in this view (its traffic or the config has changed since): go back "
        "to the panel",
        code="proposal_not_found",
    )


def proposal_fields(fields: dict[str, str]) -> dict[str, str]:
    """The names a proposal is found by, checked: 400 when one is missing or too long."""
    for name in ("group", "served"):
        if not fields.get(name):
            raise InvalidRequest(f"{name}: name the panel row to review", param=name)
    if len(fields.get("q", "")) > MAX_QUERY_CHARS:
        raise InvalidRequest(f"q: at most {MAX_QUERY_CHARS} characters", param="q")
    return fields


def _keys(text: str) -> tuple[DocumentKey, ...]:
    """The documents a proposal writes (the gateway's own YAML, so plain mappings)."""
    return tuple(
        (str(doc["type"]), str(doc["name"]))
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    )
