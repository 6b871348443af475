"""Issue 10, items 2 and 10, through a real gateway (SQLite and PostgreSQL):

- a model with no price binds a USD budget: `unpriced: block` (the default for hard
  budgets) refuses it naming the budget and the model, `allow` admits it with cost null,
  `price_as: MODEL` charges the budget at MODEL's prices and the ledger row says so;
- a `price:` override applies by the configured model name whatever the upstream name;
- `apply` (CLI and API) says what a document will do: unpriced models, undefined alert
  targets, unknown providers and models that stop resolving; `--strict` refuses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import openai
import pytest

from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook
from tests.e2e.gateway import run_gateway
from tests.e2e.policy_support import (
    PLACEHOLDER,
    budget_rows,
    cli,
    events,
    replace_config,
    uid,
    wait_for,
)
from tests.support import fresh_postgres_database

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
HOUSE_PRICE = (1000.0, 2000.0)  # USD per million input / output tokens: unmistakable


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request, tmp_path_factory):
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("unpriced") / "sluicegate.db"
        with run_gateway(f"sqlite:///{db}") as running:
            yield running
    else:
        with fresh_postgres_database() as url, run_gateway(url) as running:
            yield running


def providers(gw) -> str:
    """The emulator as two accounts: `openai` (priced models) and `local`, a self-hosted
    server whose models genai-prices does not know; `house` has a price of its own under
    a different upstream name."""
    account = f"kind: openai, base_url: {gw.url}/emulator/v1, headers: {{authorization: Bearer e}}"
    return "\n".join(
        [
            "name: self-hosted",
            "type: gateway-providers",
            "providers:",
            f"  - {{name: openai, {account}}}",
            f"  - {{name: local, {account}}}",
            "models:",
            "  gpt-4o: {provider: openai}",
            "  gpt-4o-mini: {provider: openai}",
            "  llama-local: {provider: local, model: meta-llama-3-8b-instruct-q4}",
            "  house: {provider: local, model: house-llm-v7, price: "
            f"{{input_mtok: {HOUSE_PRICE[0]}, output_mtok: {HOUSE_PRICE[1]}}}}}",
            "",
        ]
    )


def budget(budget_id: str, project: str, extra: str = "") -> str:
    lines = [
        f"name: budgets-{budget_id}",
        "type: gateway-budget-config",
        "budgets:",
        f"  - id: {budget_id}",
        f"    scope: {{metadata: {{X-TFY-Project: {project}}}}}",
        "    ceiling_usd: 100",
        "    window: daily",
        "    on_exceed: hard_block",
    ]
    return "\n".join([*lines, *(f"    {line}" for line in extra.splitlines())]) + "\n"


def client(gw, project: str) -> openai.OpenAI:
    key = gw.create_key(name=f"k-{uid()}", project=project)["key"]
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def ask(sdk: openai.OpenAI, model: str):
    return sdk.chat.completions.with_raw_response.create(
        model=model, max_tokens=20, messages=[{"role": "user", "content": "hello there"}]
    )


def spent(gw, budget_id: str) -> float:
    return budget_rows(gw, budget_id)["daily"]["spent_usd"]


# --- item 2: unpriced models bind budgets --------------------------------------------------
@pytest.mark.parametrize("setting", ["", "unpriced: block"])
def test_a_hard_budget_refuses_an_unpriced_model_naming_budget_and_model(gw, setting):
    u = uid()
    project, budget_id = f"p-{u}", f"hard-{u}"
    replace_config(gw, providers(gw), budget(budget_id, project, setting))
    sdk = client(gw, project)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(sdk, "llama-local")
    error = refused.value
    assert error.status_code == 403
    body = error.body
    assert isinstance(body, dict)
    assert (body["code"], body["rule_id"]) == ("unpriced_model", budget_id)
    assert (
        budget_id in body["message"]
        and "'llama-local (local/meta-llama-3-8b-instruct-q4)'" in body["message"]
    )
    assert error.response.headers["x-sluice-rule-id"] == budget_id
    assert "retry-after" not in error.response.headers  # waiting does not help
    row = gw.request_row(error.response.headers["x-sluice-request-id"])
    assert row["status_code"] == 403 and row["error_type"] == "unpriced_model"
    assert events(row) == [(budget_id, "unpriced_block")]

    # in the Anthropic format too, and a priced model still goes through
    key = sdk.api_key
    claude = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as in_anthropic:
        claude.messages.create(
            model="llama-local", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert in_anthropic.value.body["error"]["rule_id"] == budget_id  # type: ignore[index]
    assert ask(sdk, "gpt-4o-mini").http_response.status_code == 200


def test_allow_admits_an_unpriced_model_and_records_cost_null(gw):
    u = uid()
    project, budget_id = f"p-{u}", f"allow-{u}"
    replace_config(gw, providers(gw), budget(budget_id, project, "unpriced: allow"))
    raw = ask(client(gw, project), "llama-local")
    assert raw.http_response.status_code == 200
    row = gw.request_row(raw.headers["x-sluice-request-id"])
    assert row["output_tokens"] > 0
    assert row["cost_usd"] is None and row["priced_as"] is None  # never a fake $0
    assert spent(gw, budget_id) == 0


def test_price_as_charges_the_budget_at_that_models_price_and_the_row_says_so(gw):
    u = uid()
    project, budget_id = f"p-{u}", f"as-{u}"
    replace_config(gw, providers(gw), budget(budget_id, project, "unpriced: {price_as: gpt-4o}"))
    raw = ask(client(gw, project), "llama-local")
    usage = raw.parse().usage
    assert usage is not None
    row = gw.request_row(raw.headers["x-sluice-request-id"])
    expected = (
        PriceBook()
        .price(
            "openai",
            "gpt-4o",
            Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
        )
        .cost_usd
    )
    assert expected is not None and expected > 0
    assert row["priced_as"] == "gpt-4o"
    assert row["cost_usd"] == pytest.approx(expected)
    assert float(raw.headers["x-sluice-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    wait_for(lambda: spent(gw, budget_id) == pytest.approx(expected, abs=2e-6))


def test_a_price_override_applies_by_the_configured_name_whatever_the_upstream_name(gw):
    u = uid()
    project, budget_id = f"p-{u}", f"house-{u}"
    replace_config(gw, providers(gw), budget(budget_id, project))
    raw = ask(client(gw, project), "house")  # served upstream as house-llm-v7
    assert raw.http_response.status_code == 200
    usage = raw.parse().usage
    assert usage is not None
    row = gw.request_row(raw.headers["x-sluice-request-id"])
    assert row["model"] == "house-llm-v7"
    expected = (
        usage.prompt_tokens * HOUSE_PRICE[0] + usage.completion_tokens * HOUSE_PRICE[1]
    ) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)
    assert row["price_id"] == "override:house" and row["priced_as"] is None
    wait_for(lambda: spent(gw, budget_id) == pytest.approx(expected, abs=2e-6))


# --- item 10: apply says what a document will do --------------------------------------------
def messages(payload: dict) -> list[str]:
    return [w["message"] for w in payload["warnings"]]


def test_dry_run_of_the_seed_budget_lists_the_undefined_alert_targets(gw):
    replace_config(gw)  # no notification targets defined
    done = cli(gw, "apply", "--dry-run", "-f", str(EXAMPLES / "budget-config.yaml"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "dry run: nothing applied" in out
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert any("'slack:#ai-budget-alerts'" in line for line in warned), out
    assert any("'pagerduty:platform'" in line for line in warned), out
    assert all("platform-search-monthly" in line for line in warned)
    assert "budgets[0].alerts[0].notify" in warned[0]

    response = gw.admin.post(
        "/api/config",
        content=(EXAMPLES / "budget-config.yaml").read_text(),
        params={"dry_run": "true"},
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 200
    payload = response.json()
    assert len(payload["warnings"]) == 2
    assert {w["document"] for w in payload["warnings"]} == {"2026-q2-project-budgets"}
    # with the targets defined, nothing to say
    defined = replace_config(gw, (EXAMPLES / "notification-targets.yaml").read_text())
    assert defined["warnings"] == []
    quiet = cli(gw, "apply", "--dry-run", "-f", str(EXAMPLES / "budget-config.yaml"))
    assert "warning:" not in quiet.stdout


def test_the_seed_routing_document_names_providers_that_do_not_exist(gw):
    replace_config(gw)
    response = gw.admin.post(
        "/api/config",
        content=(EXAMPLES / "routing-config.yaml").read_text(),
        params={"dry_run": "true"},
        headers={"content-type": "application/yaml"},
    )
    warned = messages(response.json())
    assert any("'bedrock'" in m and "anthropic.claude-haiku-4-5" in m for m in warned), warned
    assert any("'vertex'" in m and "gemini-2.0-flash" in m for m in warned), warned


def test_one_providers_document_lists_the_default_models_it_removes(gw, tmp_path):
    replace_config(gw)  # the default catalogue serves gpt-4o-mini, claude-*, ...
    one = "\n".join(
        [
            "name: only-gpt-4o",
            "type: gateway-providers",
            "providers:",
            "  - {name: openai, kind: openai, base_url: https://api.openai.com/v1}",
            "models:",
            "  gpt-4o: {provider: openai}",
            "",
        ]
    )
    path = tmp_path / "one-provider.yaml"
    path.write_text(one)
    done = cli(gw, "apply", "--dry-run", "-f", str(path))
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "stop resolving" in line]
    for gone in ("gpt-4o-mini", "claude-haiku-4-5", "haiku", "mini"):
        assert gone in line
    assert "'gpt-4o'," not in line and "replaces the default catalogue" in line
    assert line.startswith("warning: only-gpt-4o (gateway-providers):")


def test_strict_refuses_a_change_with_warnings_and_applies_nothing(gw):
    replace_config(gw)
    before = gw.admin.get("/api/config").json()["version"]
    done = cli(gw, "apply", "--strict", "-f", str(EXAMPLES / "budget-config.yaml"))
    assert done.returncode == 1
    assert "nothing applied" in done.stderr and "slack:#ai-budget-alerts" in done.stderr
    response = gw.admin.post(
        "/api/config",
        content=(EXAMPLES / "budget-config.yaml").read_text(),
        params={"strict": "true"},
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "config_warnings" and len(error["problems"]) == 2
    assert gw.admin.get("/api/config").json()["version"] == before
    # without warnings, strict applies
    targets = (EXAMPLES / "notification-targets.yaml").read_text()
    body = "\n---\n".join([PLACEHOLDER, targets, (EXAMPLES / "budget-config.yaml").read_text()])
    ok = gw.admin.post(
        "/api/config",
        content=body,
        params={"strict": "true", "replace": "true"},
        headers={"content-type": "application/yaml"},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["applied"] and json.dumps(ok.json()["warnings"]) == "[]"


def test_apply_warns_which_models_are_unpriced(gw):
    replace_config(gw)
    response = gw.admin.post(
        "/api/config",
        content=providers(gw),
        params={"dry_run": "true"},
        headers={"content-type": "application/yaml"},
    )
    unpriced = [w for w in response.json()["warnings"] if "has no price" in w["message"]]
    assert [w["path"] for w in unpriced] == ["models.llama-local"]  # house has its own price
    assert "meta-llama-3-8b-instruct-q4" in unpriced[0]["message"]
