"""Policy as code through a real gateway on loopback, the way a user would try it:
documents applied with the CLI and the admin API, rate limits and budgets enforced before
the call, alerts delivered to a real receiver, and an unreachable counter store.

Each test replaces the whole config with its own documents and uses rule ids and
identities of its own, so the tests share one gateway without seeing each other's counts.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.e2e.gateway import ADMIN_KEY, run_gateway
from tests.e2e.policy_support import (
    CLI_USER,
    FIXTURES,
    SEED_FILES,
    Receiver,
    budget_rows,
    chat,
    cli,
    events,
    hammer,
    prices_doc,
    replace_config,
    rows_for,
    seed_text,
    uid,
    wait_for,
)
from tests.support import ServerProcess, free_port

HI = [{"role": "user", "content": "hi"}]
LONG = "tell me a long story about rivers and mountains " * 3
DURATION = re.compile(r"^(\d+h)?(\d+m)?\d+s$")


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    db = tmp_path_factory.mktemp("policy") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as running:
        yield running


def new_key(gw, **fields) -> str:
    return gw.create_key(name=f"key-{uid()}", **fields)["key"]


def config_version(gw) -> int:
    return gw.admin.get("/api/config").json()["version"]


def rate_doc(name: str, rules: str) -> str:
    return f"name: {name}\ntype: gateway-rate-limit-config\nrules:\n{rules}"


def budget_doc(name: str, budgets: str) -> str:
    return f"name: {name}\ntype: gateway-budget-config\nbudgets:\n{budgets}"


def requests_quota(response: httpx.Response) -> tuple[str, str]:
    return (
        response.headers["x-ratelimit-limit-requests"],
        response.headers["x-ratelimit-remaining-requests"],
    )


def assert_refused(response: httpx.Response, rule_id: str, code: str = "rate_limit_exceeded"):
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["rule_id"] == rule_id
    assert rule_id in error["message"]
    assert response.headers["x-sluice-rule-id"] == rule_id
    assert int(response.headers["retry-after"]) >= 1


# --- config as code -----------------------------------------------------------------
def test_seed_documents_apply_unchanged_with_the_cli(gw, tmp_path):
    replace_config(gw)
    before = config_version(gw)
    files = [arg for name in SEED_FILES for arg in ("-f", str(FIXTURES / name))]

    dry = cli(gw, "apply", *files, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for expected in (
        "+++ gateway-rate-limit-config/production-rate-limits",
        "+++ gateway-budget-config/2026-q2-project-budgets",
        "+++ gateway-rate-limiting-config/ratelimiting-config",
        "tokens: 200000",
        "unit: requests_per_day",
        "dry run: nothing applied",
    ):
        assert expected in dry.stdout
    assert config_version(gw) == before  # a dry run changes nothing

    applied = cli(gw, "apply", *files)
    assert applied.returncode == 0, applied.stderr
    seeds = before + 1
    assert f"applied: version {seeds}" in applied.stdout
    live = {(d["type"], d["name"]): d for d in gw.admin.get("/api/config").json()["documents"]}
    for name in SEED_FILES:  # stored exactly as written
        doc = yaml.safe_load(seed_text(name))
        assert live[(doc["type"], doc["name"])] == doc
    shown = cli(gw, "config", "show").stdout
    for rule in (
        "per-session-loop-guard",
        "per-user-burst",
        "classify-intent-soft-cap",
        "platform-search-monthly",
        "intern-sandbox-cap",
        "rule-id",
    ):
        assert rule in shown

    # the dry run diffs against what is live
    edited = tmp_path / "budget.yaml"
    edited.write_text(
        seed_text("budget-config.yaml").replace("ceiling_usd: 4000", "ceiling_usd: 5000")
    )
    diff = cli(gw, "apply", "-f", str(edited), "--dry-run")
    assert re.search(r"^-\s+ceiling_usd: 4000$", diff.stdout, re.M), diff.stdout
    assert re.search(r"^\+\s+ceiling_usd: 5000$", diff.stdout, re.M)
    assert "tokens: 200000" not in diff.stdout and config_version(gw) == seeds
    assert cli(gw, "apply", "-f", str(edited)).returncode == 0
    assert budget_rows(gw, "platform-search-monthly")["monthly"]["ceiling_usd"] == 5000

    # every version is kept with who applied it and when
    history = gw.admin.get("/api/config/history").json()["versions"]
    assert [v["version"] for v in history[:2]] == [seeds + 1, seeds]
    assert all(CLI_USER in v["applied_by"] for v in history[:2])
    assert all(abs(v["applied_at"] - time.time()) < 120 for v in history[:2])
    table = cli(gw, "config", "history").stdout
    assert CLI_USER in table and str(seeds + 1) in table

    # rollback restores an earlier version as a new version
    rolled = cli(gw, "config", "rollback", str(seeds))
    assert rolled.returncode == 0, rolled.stderr
    assert f"applied: version {seeds + 2}" in rolled.stdout
    current = gw.admin.get("/api/config").json()
    assert current["version"] == seeds + 2 and "rollback" in current["comment"]
    restored = gw.admin.get(f"/api/config/versions/{seeds}").json()["documents"]
    assert current["documents"] == restored
    assert budget_rows(gw, "platform-search-monthly")["monthly"]["ceiling_usd"] == 4000


def test_seed_documents_behave_as_written(gw):
    replace_config(gw, *(seed_text(name) for name in SEED_FILES))
    u = uid()
    frontend = new_key(gw, user_id=f"alice-{u}", team="frontend", project="platform-search")
    production = {
        "X-TFY-Environment": "production",
        "X-TFY-Session-ID": f"sess-{u}",
        "X-TFY-Workflow-Tag": "classify-intent",
    }
    first = chat(gw, frontend, headers=production)
    assert first.status_code == 200, first.text
    # every matching rule counts; the headers speak for the tightest of each measure
    assert first.headers["x-ratelimit-limit-requests"] == "5000"  # seed 004 quota, team:frontend
    assert first.headers["x-ratelimit-limit-tokens"] == "200000"  # per-session-loop-guard
    assert DURATION.match(first.headers["x-ratelimit-reset-tokens"])
    plain = chat(gw, frontend)  # no session, not production: only per-user-burst applies
    assert plain.headers["x-ratelimit-limit-tokens"] == "5000000"
    assert int(plain.headers["x-ratelimit-remaining-requests"]) <= 4998
    other = chat(
        gw,
        new_key(gw, user_id=f"bob-{u}", team="ads"),
        headers={"X-TFY-Workflow-Tag": "classify-intent"},
    )
    assert other.headers["x-ratelimit-limit-requests"] == "100000"  # classify-intent-soft-cap

    spend = budget_rows(gw, "platform-search-monthly")["monthly"]
    assert spend["ceiling_usd"] == 4000 and spend["spent_usd"] > 0
    next_month = (datetime.now(ZoneInfo("UTC")).replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    assert spend["resets_at"] == next_month.isoformat()

    # intern-sandbox-cap: hard_block; platform-search-monthly: fallback_to_cheaper, which
    # uses the routing config's fallback model
    replace_config(
        gw,
        *(seed_text(name) for name in SEED_FILES),
        prices_doc(f"pricey-{u}", **{"claude-sonnet-4-6": (1e9, 1e9)}),
        ROUTE.format(name=f"intent-{u}"),
    )
    intern = new_key(gw, user_id=f"intern-{u}")
    blocked = chat(
        gw, intern, model="claude-sonnet-4-6", headers={"X-TFY-Project": "intern-sandbox"}
    )
    assert_refused(blocked, "intern-sandbox-cap", "budget_exceeded")
    degraded = chat(gw, frontend, model=f"intent-{u}")
    assert degraded.status_code == 200, degraded.text
    assert degraded.headers["x-sluice-resolved-model"] == "openai/gpt-4o-mini"
    row = gw.request_row(degraded.headers["x-sluice-request-id"])
    assert events(row) == [("platform-search-monthly", "fallback")]
    assert gw.request_row(blocked.headers["x-sluice-request-id"])["status_code"] == 429


ROUTE = """
name: {name}
type: gateway-load-balancing-config
rule_type: weight-based
rules:
  - id: primary-sonnet
    weight: 100
    target: {{provider: anthropic, model: claude-sonnet-4-6}}
fallbacks:
  - {{provider: openai, model: gpt-4o-mini}}
"""

BAD_DOCUMENTS = [
    (
        "rules:\n  - {id: a, limit: {requests: 5, window: 1m}}\n"
        "  - {id: b, limit: {requests: 5, window: 1m}}\n"
        "  - {id: c, limit: {requests: 5, window: fortnight}}\n",
        "rules[2].limit.window",
        "'fortnight' is not a window; use 30s, 1m, 1h, 1d",
    ),
    (
        "rules:\n  - {id: a, limit: {requests: 5, window: 1m, colour: blue}}\n",
        "rules[0].limit",
        "colour",
    ),
    (
        "rules:\n  - {id: a, limit: {requests: 5, window: 1m}, on_breach: shrug}\n",
        "rules[0].on_breach",
        "'shrug' is not one of hard_block",
    ),
    (
        "rules:\n  - {id: a, limit: {requests: 5, window: 1m, scope: galaxy}}\n",
        "rules[0].limit.scope",
        "'galaxy' is not a scope",
    ),
    (
        "rules:\n  - {id: a, limit: {requests: 5, tokens: 9, window: 1m}}\n",
        "rules[0].limit",
        "exactly one of requests or tokens",
    ),
    (
        "rules:\n  - {id: a, when: {subjects: [frontend]}, limit: {requests: 5, window: 1m}}\n",
        "rules[0].when.subjects[0]",
        "'frontend' is not a subject",
    ),
    ("rules: []\nowner: me\n", "", "owner"),
]


@pytest.mark.parametrize(
    "body,path,message",
    BAD_DOCUMENTS,
    ids=[
        "window",
        "unknown-field",
        "on_breach",
        "scope",
        "measure",
        "subject",
        "unknown-top-level",
    ],
)
def test_a_bad_document_is_refused_whole(gw, body, path, message):
    replace_config(gw)
    before = gw.admin.get("/api/config").json()
    good = rate_doc("good", "  - {id: fine, limit: {requests: 5, window: 1m}}\n")
    response = gw.admin.post(
        "/api/config",
        content=f"{good}---\nname: bad\ntype: gateway-rate-limit-config\n{body}",
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 400, response.text
    problems = response.json()["error"]["problems"]
    assert any(
        p["document"] == "bad"
        and p["path"].startswith(path)
        and message in f"{p['path']} {p['message']}"
        for p in problems
    ), problems
    after = gw.admin.get("/api/config").json()
    assert after["version"] == before["version"]  # nothing half-applies
    assert after["documents"] == before["documents"]


def test_bad_budget_and_target_documents_are_refused(gw, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        budget_doc("b", "  - {id: x, ceiling_usd: -1, window: fortnightly}\n")
        + "---\nname: t\ntype: gateway-notification-targets\n"
        "targets:\n  'slack:#x': {kind: webhook, url: 'http://127.0.0.1:1/'}\n"
    )
    before = config_version(gw)
    result = cli(gw, "apply", "-f", str(bad))
    assert result.returncode == 1
    assert "nothing applied" in result.stderr
    assert "budgets[0].ceiling_usd" in result.stderr
    assert "budgets[0].window: 'fortnightly' is not a budget window; use daily" in result.stderr
    assert "'slack:#x' is named slack: but has kind webhook" in result.stderr
    assert config_version(gw) == before


def test_serve_loads_config_files_at_start(tmp_path):
    u = uid()
    limits = tmp_path / "limits.yaml"
    limits.write_text(
        rate_doc(
            "boot-limits",
            f"""  - id: boot-{u}
    limit: {{requests: 1, window: 1h, scope: key}}
""",
        )
    )
    money = tmp_path / "money.yaml"
    money.write_text(
        budget_doc(
            "boot-budgets",
            f"""  - id: boot-budget-{u}
    ceiling_usd: 10
    window: weekly
    timezone: Europe/Berlin
""",
        )
    )
    with run_gateway(
        f"sqlite:///{tmp_path / 'boot.db'}", "--config", str(limits), "--config", str(money)
    ) as boot:
        current = boot.admin.get("/api/config").json()
        assert current["version"] == 1 and current["applied_by"] == "serve --config"
        assert {d["name"] for d in current["documents"]} == {"boot-limits", "boot-budgets"}
        key = new_key(boot, user_id="booted")
        assert chat(boot, key).status_code == 200
        assert_refused(chat(boot, key), f"boot-{u}")
        weekly = budget_rows(boot, f"boot-budget-{u}")["weekly"]
        assert weekly["timezone"] == "Europe/Berlin" and weekly["resets_at"].endswith(
            ("+01:00", "+02:00")
        )


# --- rate limits --------------------------------------------------------------------
def test_hard_block_answers_in_the_format_the_client_spoke(gw):
    u = uid()
    rule = f"two-an-hour-{u}"
    replace_config(
        gw,
        rate_doc(
            f"hard-{u}",
            f"""  - id: {rule}
    when: {{subjects: ["user:hb-{u}"]}}
    limit: {{requests: 2, window: 1h, scope: user}}
    on_breach: hard_block
""",
        ),
    )
    key = new_key(gw, user_id=f"hb-{u}")
    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    first = oa.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=8, messages=HI
    )
    assert (
        first.headers["x-ratelimit-limit-requests"],
        first.headers["x-ratelimit-remaining-requests"],
    ) == ("2", "1")
    assert first.parse().choices[0].message.content
    oa.chat.completions.create(model="gpt-4o-mini", max_tokens=8, messages=HI)

    with pytest.raises(openai.RateLimitError) as oa_error:
        oa.chat.completions.create(model="gpt-4o-mini", max_tokens=8, messages=HI)
    assert oa_error.value.status_code == 429 and oa_error.value.code == "rate_limit_exceeded"
    assert oa_error.value.body["rule_id"] == rule and rule in oa_error.value.message
    assert_refused(oa_error.value.response, rule)
    assert 1 <= int(oa_error.value.response.headers["retry-after"]) <= 3600

    an = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as an_error:
        an.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    body = an_error.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["rule_id"] == rule
    assert an_error.value.response.headers["x-sluice-rule-id"] == rule

    blocked = rows_for(gw, [oa_error.value.response, an_error.value.response])
    for row in blocked:
        assert row["status_code"] == 429 and events(row) == [(rule, "hard_block")]
        assert row["user_id"] == f"hb-{u}"


def test_a_short_window_resets(gw):
    u = uid()
    replace_config(
        gw,
        rate_doc(
            f"short-{u}",
            f"""  - id: per-2s-{u}
    when: {{subjects: ["user:short-{u}"]}}
    limit: {{requests: 1, window: 2s, scope: user}}
""",
        ),
    )
    key = new_key(gw, user_id=f"short-{u}")
    assert chat(gw, key).status_code == 200
    refused = chat(gw, key)
    if refused.status_code == 200:  # crossed a window edge between the two calls
        refused = chat(gw, key)
    assert_refused(refused, f"per-2s-{u}")
    wait = int(refused.headers["retry-after"])
    assert wait <= 2
    time.sleep(wait + 0.05)
    assert chat(gw, key).status_code == 200


SCOPES = [
    "key",
    "user",
    "team",
    "project",
    "session",
    "workflow",
    "model",
    "environment",
    "cost_center",
    "metadata:customer",
]
SCOPE_HEADERS = {
    "user": "X-Sluice-User-ID",
    "team": "X-Sluice-Team",
    "project": "X-Sluice-Project",
    "session": "X-Sluice-Session-ID",
    "workflow": "X-Sluice-Workflow-Tag",
    "environment": "X-Sluice-Environment",
    "cost_center": "X-Sluice-Cost-Center",
}


def test_every_scope_keeps_its_own_count(gw):
    u = uid()
    rules = "".join(
        f"""  - id: scope-{scope.replace(":", "-")}-{u}
    when: {{metadata: {{scope_test: "{scope}-{u}"}}}}
    limit: {{requests: 1, window: 1h, scope: "{scope}"}}
"""
        for scope in SCOPES
    )
    replace_config(gw, rate_doc(f"scopes-{u}", rules))
    one, two = new_key(gw), new_key(gw)

    def call(scope: str, value: str):
        meta = {"scope_test": f"{scope}-{u}"}
        key, model, headers = one, "gpt-4o-mini", {}
        if scope == "key":
            key = one if value == "a" else two
        elif scope == "model":
            model = "gpt-4o-mini" if value == "a" else "claude-haiku-4-5"
        elif scope == "metadata:customer":
            meta["customer"] = f"{value}-{u}"
        else:
            headers[SCOPE_HEADERS[scope]] = f"{value}-{u}"
        headers["X-Sluice-Metadata"] = json.dumps(meta)
        return chat(gw, key, model=model, headers=headers)

    for scope in SCOPES:
        rule = f"scope-{scope.replace(':', '-')}-{u}"
        assert call(scope, "a").status_code == 200, scope
        assert_refused(call(scope, "a"), rule)
        assert call(scope, "b").status_code == 200, scope  # another value, another count


def test_when_matches_fields_headers_metadata_subjects_and_models(gw):
    """`when.metadata` may name an envelope field, its X-Sluice- or X-TFY- header, or a
    free metadata key; a client sending X-TFY-* headers is attributed the same."""
    u = uid()
    replace_config(
        gw,
        rate_doc(
            f"when-{u}",
            f"""  - id: by-field-{u}
    when: {{metadata: {{environment: prod-{u}}}}}
    limit: {{requests: 1, window: 1h}}
  - id: by-sluice-header-{u}
    when: {{metadata: {{X-Sluice-Workflow-Tag: wf-{u}}}}}
    limit: {{requests: 1, window: 1h}}
  - id: by-tfy-header-{u}
    when: {{metadata: {{X-TFY-Project: proj-{u}}}}}
    limit: {{requests: 1, window: 1h}}
  - id: by-free-key-{u}
    when: {{metadata: {{customer: acme-{u}}}}}
    limit: {{requests: 1, window: 1h}}
  - id: by-subject-{u}
    when: {{subjects: ["team:squad-{u}"]}}
    limit: {{requests: 1, window: 1h}}
  - id: by-model-{u}
    when: {{models: [haiku], subjects: ["user:modeller-{u}"]}}
    limit: {{requests: 1, window: 1h}}
""",
        ),
    )
    key = new_key(gw)
    cases = [  # (rule, first match, second match, a near miss)
        (
            "by-field",
            {"X-Sluice-Environment": f"prod-{u}"},
            {"X-TFY-Environment": f"prod-{u}"},
            {"X-Sluice-Environment": f"staging-{u}"},
        ),
        (
            "by-sluice-header",
            {"X-TFY-Workflow-Tag": f"wf-{u}"},
            {"X-Sluice-Workflow-Tag": f"wf-{u}"},
            {"X-Sluice-Workflow-Tag": f"other-{u}"},
        ),
        (
            "by-tfy-header",
            {"X-Sluice-Project": f"proj-{u}"},
            {"X-TFY-Project": f"proj-{u}"},
            {"X-TFY-Project": f"elsewhere-{u}"},
        ),
        (
            "by-free-key",
            {"X-Sluice-Metadata": json.dumps({"customer": f"acme-{u}"})},
            {"X-TFY-Metadata": json.dumps({"customer": f"acme-{u}"})},
            {"X-Sluice-Metadata": json.dumps({"customer": f"globex-{u}"})},
        ),
    ]
    for rule, first, second, miss in cases:
        assert chat(gw, key, headers=first).status_code == 200, rule
        assert_refused(chat(gw, key, headers=second), f"{rule}-{u}")
        assert chat(gw, key, headers=miss).status_code == 200, rule

    squad = new_key(gw, team=f"squad-{u}")
    assert chat(gw, squad).status_code == 200
    assert_refused(chat(gw, squad), f"by-subject-{u}")
    assert chat(gw, new_key(gw, team=f"other-{u}")).status_code == 200

    modeller = new_key(gw, user_id=f"modeller-{u}")
    assert chat(gw, modeller, model="claude-haiku-4-5").status_code == 200
    assert_refused(chat(gw, modeller, model="haiku"), f"by-model-{u}")  # the alias counts too
    assert chat(gw, modeller, model="gpt-4o-mini").status_code == 200


def test_all_matching_rules_count_and_the_first_breached_is_named(gw):
    u = uid()
    roomy = f"""  - id: roomy-{u}
    when: {{subjects: ["user:many-{u}"]}}
    limit: {{requests: 100, window: 1h, scope: user}}
"""
    first = f"""  - id: first-{u}
    when: {{subjects: ["user:many-{u}"]}}
    limit: {{requests: 1, window: 1h, scope: user}}
"""
    second = f"""  - id: second-{u}
    when: {{subjects: ["user:many-{u}"]}}
    limit: {{requests: 1, window: 1h, scope: key}}
"""
    tokens = f"""  - id: tokens-{u}
    when: {{subjects: ["user:many-{u}"]}}
    limit: {{tokens: 100000, window: 1m, scope: user}}
"""
    replace_config(gw, rate_doc(f"many-{u}", roomy + first + second + tokens))
    key = new_key(gw, user_id=f"many-{u}")
    ok = chat(gw, key)
    assert ok.status_code == 200
    # the tightest rule of each measure speaks in the headers
    assert requests_quota(ok) == ("1", "0")
    assert DURATION.match(ok.headers["x-ratelimit-reset-requests"])
    assert ok.headers["x-ratelimit-limit-tokens"] == "100000"
    assert DURATION.match(ok.headers["x-ratelimit-reset-tokens"])

    refused = chat(gw, key)  # first and second are both breached: config order decides
    assert_refused(refused, f"first-{u}")
    replace_config(gw, rate_doc(f"many-{u}", roomy + second + first + tokens))
    assert_refused(chat(gw, key), f"second-{u}")
    replace_config(gw, rate_doc(f"many-{u}", roomy))
    again = chat(gw, key)  # roomy counted the admitted call, not the refused ones
    assert requests_quota(again) == ("100", "98")
    assert events(gw.request_row(refused.headers["x-sluice-request-id"])) == [
        (f"first-{u}", "hard_block")
    ]


def test_token_limits_reserve_the_estimate_and_settle_to_actual_usage(gw):
    u = uid()
    rule = f"tokens-{u}"
    replace_config(
        gw,
        rate_doc(
            f"tok-{u}",
            f"""  - id: {rule}
    when: {{subjects: ["user:tok-{u}"]}}
    limit: {{tokens: 2000, window: 1h, scope: user}}
""",
        ),
    )
    key = new_key(gw, user_id=f"tok-{u}")
    r1 = chat(gw, key, max_tokens=50)
    reserved = 2000 - int(r1.headers["x-ratelimit-remaining-tokens"])  # estimate + max_tokens
    assert 50 < reserved < 80
    row1 = gw.request_row(r1.headers["x-sluice-request-id"])
    actual = row1["input_tokens"] + row1["output_tokens"]
    assert actual != reserved
    r2 = chat(gw, key, max_tokens=50)  # the first call now counts what it used
    assert int(r2.headers["x-ratelimit-remaining-tokens"]) == 2000 - actual - reserved
    row2 = gw.request_row(r2.headers["x-sluice-request-id"])
    used = actual + row2["input_tokens"] + row2["output_tokens"]

    gw.set_faults({"gpt-4o": {"delay_ms": 1200}})
    try:
        slow: dict = {}
        thread = threading.Thread(
            target=lambda: slow.update(r=chat(gw, key, model="gpt-4o", max_tokens=1500))
        )
        thread.start()
        time.sleep(0.4)  # its 1500 + estimate tokens are held while it runs
        refused = chat(gw, key, max_tokens=500)
        assert_refused(refused, rule)
        assert "2000" in refused.json()["error"]["message"]
        thread.join()
    finally:
        gw.clear_faults()
    assert slow["r"].status_code == 200
    after = chat(gw, key, max_tokens=500)  # settled to its actual (small) usage
    assert after.status_code == 200, after.text
    row3 = gw.request_row(slow["r"].headers["x-sluice-request-id"])
    expected = 2000 - used - row3["input_tokens"] - row3["output_tokens"] - (reserved - 50 + 500)
    assert int(after.headers["x-ratelimit-remaining-tokens"]) == expected
    with httpx.stream(
        "POST",
        gw.url + "/v1/messages",
        timeout=30,
        json={"model": "claude-haiku-4-5", "max_tokens": 20, "stream": True, "messages": HI},
        headers={"x-api-key": key},
    ) as streamed:  # streams carry the headers too
        assert streamed.status_code == 200 and "".join(streamed.iter_text())
        assert streamed.headers["x-ratelimit-limit-tokens"] == "2000"
        assert int(streamed.headers["x-ratelimit-remaining-tokens"]) < 2000 - used


def test_queue_then_429_waits_for_capacity_then_gives_up(gw):
    u = uid()
    replace_config(
        gw,
        rate_doc(
            f"queue-{u}",
            f"""  - id: queue-tokens-{u}
    when: {{subjects: ["user:qt-{u}"]}}
    limit: {{tokens: 1200, window: 1h, scope: user}}
    on_breach: queue_then_429
    queue_timeout_ms: 5000
  - id: queue-requests-{u}
    when: {{subjects: ["user:qr-{u}"]}}
    limit: {{requests: 1, window: 1h, scope: user}}
    on_breach: queue_then_429
    queue_timeout_ms: 700
""",
        ),
    )
    tokens_key = new_key(gw, user_id=f"qt-{u}")
    gw.set_faults({"gpt-4o": {"delay_ms": 900}})
    try:
        thread = threading.Thread(
            target=chat, args=(gw, tokens_key), kwargs={"model": "gpt-4o", "max_tokens": 1000}
        )
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        queued = chat(gw, tokens_key, max_tokens=1000)  # waits until the first one settles
        waited = time.monotonic() - started
        thread.join()
    finally:
        gw.clear_faults()
    assert queued.status_code == 200 and 0.3 < waited < 4
    row = gw.request_row(queued.headers["x-sluice-request-id"])
    assert events(row) == [(f"queue-tokens-{u}", "queued")]
    assert row["policy_events"][0]["detail"].startswith("waited")

    requests_key = new_key(gw, user_id=f"qr-{u}")
    assert chat(gw, requests_key).status_code == 200
    started = time.monotonic()
    gave_up = chat(gw, requests_key)  # no capacity frees within the hour: 429 after 0.7 s
    assert 0.65 < time.monotonic() - started < 3
    assert_refused(gave_up, f"queue-requests-{u}")
    assert events(gw.request_row(gave_up.headers["x-sluice-request-id"])) == [
        (f"queue-requests-{u}", "queued"),
        (f"queue-requests-{u}", "hard_block"),
    ]


def test_fallback_to_haiku_serves_the_request_with_haiku(gw):
    u = uid()
    rule = f"soft-cap-{u}"
    replace_config(
        gw,
        rate_doc(
            f"fallback-{u}",
            f"""  - id: {rule}
    when: {{metadata: {{X-TFY-Workflow-Tag: classify-{u}}}}}
    limit: {{requests: 1, window: 1h}}
    on_breach: fallback_to_haiku
""",
        ),
    )
    key = new_key(gw, user_id=f"fb-{u}")
    tag = {"X-TFY-Workflow-Tag": f"classify-{u}"}
    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, default_headers=tag)
    first = oa.chat.completions.with_raw_response.create(model="gpt-4o", max_tokens=8, messages=HI)
    assert first.headers["x-sluice-resolved-model"] == "openai/gpt-4o"
    second = oa.chat.completions.with_raw_response.create(model="gpt-4o", max_tokens=8, messages=HI)
    assert second.headers["x-sluice-resolved-model"] == "anthropic/claude-haiku-4-5"
    assert second.parse().choices[0].message.content  # still an OpenAI answer
    row = gw.request_row(second.headers["x-sluice-request-id"])
    assert (row["requested_model"], row["provider"], row["model"]) == (
        "gpt-4o",
        "anthropic",
        "claude-haiku-4-5",
    )
    assert events(row) == [(rule, "fallback")] and row["cost_usd"] > 0

    an = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, default_headers=tag)
    with pytest.raises(anthropic.RateLimitError) as caught:  # already on haiku: nowhere to go
        an.messages.create(model="haiku", max_tokens=8, messages=HI)
    assert caught.value.response.headers["x-sluice-rule-id"] == rule


# --- budgets ------------------------------------------------------------------------
def test_budget_reserves_the_worst_case_and_settles_or_releases(gw):
    u = uid()
    budget = f"spend-{u}"
    replace_config(
        gw,
        prices_doc(f"prices-{u}", **{"gpt-4o": (1000, 1000)}),
        budget_doc(
            f"b-{u}",
            f"""  - id: {budget}
    scope: {{subjects: ["user:spender-{u}"]}}
    ceiling_usd: 5
    windows: [daily, weekly, monthly, rolling_1h]
    timezone: America/New_York
""",
        ),
    )
    key = new_key(gw, user_id=f"spender-{u}")
    gw.set_faults({"gpt-4o": {"delay_ms": 1000}})
    try:
        done: dict = {}
        thread = threading.Thread(
            target=lambda: done.update(r=chat(gw, key, model="gpt-4o", max_tokens=100))
        )
        thread.start()
        in_flight = wait_for(
            lambda: (rows := budget_rows(gw, budget))["daily"]["reserved_usd"] and rows
        )
        thread.join()
    finally:
        gw.clear_faults()
    worst = in_flight["daily"]["reserved_usd"]  # (input estimate + max_tokens) x $0.001
    assert 0.1 < worst < 0.13
    assert all(r["reserved_usd"] == worst and r["spent_usd"] == 0 for r in in_flight.values())
    cost = gw.request_row(done["r"].headers["x-sluice-request-id"])["cost_usd"]
    assert 0 < cost < worst
    settled = budget_rows(gw, budget)
    assert all(
        r["spent_usd"] == pytest.approx(cost) and r["reserved_usd"] == 0 for r in settled.values()
    )
    assert settled["daily"]["pct"] == pytest.approx(cost / 5 * 100, abs=0.01)

    gw.set_faults({"gpt-4o": {"status": 500, "failure_rate": 1.0}})
    try:
        failed = chat(gw, key, model="gpt-4o", max_tokens=100)
    finally:
        gw.clear_faults()
    assert failed.status_code == 502
    assert budget_rows(gw, budget)["daily"] == settled["daily"]  # released, nothing spent

    gw.set_faults({"gpt-4o": {"delay_ms": 800}})
    try:  # a client that gives up: its hold does not outlive the call
        with pytest.raises(httpx.ReadTimeout):
            chat(gw, key, model="gpt-4o", max_tokens=100, timeout=0.3)
        wait_for(lambda: budget_rows(gw, budget)["daily"]["reserved_usd"] == 0, timeout=5)
    finally:
        gw.clear_faults()
    settled = budget_rows(gw, budget)
    cost = settled["daily"]["spent_usd"]  # what the abandoned call used, if it finished
    abandoned = wait_for(lambda: len(rows := gw.requests(user_id=f"spender-{u}")) == 3 and rows)
    assert cost == pytest.approx(sum(r["cost_usd"] or 0 for r in abandoned))

    gw.set_faults({"gpt-4o": {"inter_chunk_ms": 150}})
    try:
        with httpx.stream(
            "POST",
            gw.url + "/v1/chat/completions",
            timeout=30,
            json={
                "model": "gpt-4o",
                "stream": True,
                "max_tokens": 300,
                "messages": [{"role": "user", "content": LONG}],
            },
            headers={"authorization": f"Bearer {key}"},
        ) as response:
            request_id = response.headers["x-sluice-request-id"]
            lines = response.iter_lines()
            next(lines), next(lines)
        row = gw.request_row(request_id, timeout=10)
    finally:
        gw.clear_faults()
    assert row["status_code"] == 499 and row["client_disconnected"]
    left = wait_for(
        lambda: (rows := budget_rows(gw, budget))["daily"]["reserved_usd"] == 0 and rows
    )
    assert left["daily"]["spent_usd"] == pytest.approx(cost + (row["cost_usd"] or 0))
    assert (row["cost_usd"] or 0) < 0.3  # what it used, not the 300-token worst case

    # calendar windows reset at local midnight / Monday / the 1st; rolling ones slide
    tz = ZoneInfo("America/New_York")
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = (today + timedelta(days=1, hours=3)).replace(hour=0)
    monday = (today + timedelta(days=7 - today.weekday(), hours=3)).replace(hour=0)
    first = (today.replace(day=28) + timedelta(days=4)).replace(day=1, hour=3).replace(hour=0)
    assert left["daily"]["window_start"] == today.isoformat()
    assert left["daily"]["resets_at"] == tomorrow.isoformat()
    assert left["weekly"]["resets_at"] == monday.isoformat()
    assert left["monthly"]["resets_at"] == first.isoformat()
    assert left["rolling_1h"]["resets_at"] is None

    table = cli(gw, "budgets")
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if budget in line and "daily" in line)
    assert "5.00" in line and tomorrow.date().isoformat() in line
    assert f"{left['daily']['spent_usd']:.4f}" in line


def test_budget_is_never_exceeded_under_concurrency(gw):
    """Each call's worst case is exactly its cost here ($0.01: 10 output tokens at $1000 per
    million, input free), so a $0.07 ceiling admits exactly 7 of 40 concurrent calls."""
    u = uid()
    budget = f"cap-{u}"
    replace_config(
        gw,
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        budget_doc(
            f"b-{u}",
            f"""  - id: {budget}
    scope: {{metadata: {{project: capped-{u}}}}}
    ceiling_usd: 0.07
    window: daily
    on_exceed: hard_block
""",
        ),
    )
    keys = [new_key(gw, user_id=f"c{i}-{u}") for i in range(2)]
    header = {"X-Sluice-Project": f"capped-{u}"}
    responses = hammer(
        [
            lambda i=i: chat(gw, keys[i % 2], max_tokens=10, content=LONG, headers=header)
            for i in range(40)
        ]
    )
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(admitted) == 7
    for response in refused:
        assert_refused(response, budget, "budget_exceeded")
    rows = rows_for(gw, responses)
    spent = sum(r["cost_usd"] for r in rows if r["status_code"] == 200)
    assert spent == pytest.approx(0.07) and spent <= 0.07 + 1e-9
    assert all(events(r) == [(budget, "hard_block")] for r in rows if r["status_code"] == 429)
    status = budget_rows(gw, budget)["daily"]
    assert status["spent_usd"] == pytest.approx(0.07) and status["reserved_usd"] == 0
    assert status["pct"] == pytest.approx(100)


def test_budget_fallback_to_cheaper_audit_and_nothing_cheaper(gw):
    u = uid()
    replace_config(
        gw,
        prices_doc(f"prices-{u}", **{"claude-sonnet-4-6": (1000, 1000)}),
        ROUTE.format(name=f"smart-{u}"),
        budget_doc(
            f"b-{u}",
            f"""  - id: cheaper-{u}
    scope: {{subjects: ["user:frugal-{u}"]}}
    ceiling_usd: 0.04
    window: daily
    on_exceed: fallback_to_cheaper
  - id: watch-{u}
    scope: {{subjects: ["user:watched-{u}"]}}
    ceiling_usd: 0.04
    window: daily
    on_exceed: audit
  - id: stop-{u}
    scope: {{subjects: ["user:plain-{u}"]}}
    ceiling_usd: 0.04
    window: daily
    on_exceed: fallback_to_cheaper
""",
        ),
    )
    frugal = new_key(gw, user_id=f"frugal-{u}")
    first = chat(gw, frugal, model=f"smart-{u}", max_tokens=20)
    assert first.headers["x-sluice-resolved-model"] == "anthropic/claude-sonnet-4-6"
    cheaper = chat(gw, frugal, model=f"smart-{u}", max_tokens=20)
    assert cheaper.status_code == 200
    assert cheaper.headers["x-sluice-resolved-model"] == "openai/gpt-4o-mini"
    row = gw.request_row(cheaper.headers["x-sluice-request-id"])
    assert row["requested_model"] == f"smart-{u}" and row["model"] == "gpt-4o-mini"
    assert events(row) == [(f"cheaper-{u}", "fallback")]

    watched = new_key(gw, user_id=f"watched-{u}")
    audited = [chat(gw, watched, model="claude-sonnet-4-6", max_tokens=20) for _ in range(3)]
    assert [r.status_code for r in audited] == [200, 200, 200]
    rows = rows_for(gw, audited)
    assert events(rows[0]) == [] and events(rows[2]) == [(f"watch-{u}", "audit")]

    plain = new_key(gw, user_id=f"plain-{u}")
    assert chat(gw, plain, model="claude-sonnet-4-6", max_tokens=20).status_code == 200
    stopped = chat(gw, plain, model="claude-sonnet-4-6", max_tokens=20)
    assert_refused(stopped, f"stop-{u}", "budget_exceeded")  # a plain model: nothing cheaper
    assert "no cheaper model" in stopped.json()["error"]["message"]


def test_budget_alerts_reach_every_target_once_per_window_with_retries(gw):
    u = uid()
    budget = f"alerting-{u}"
    with Receiver(fail_first=1, first_delay_s=1.0) as rx:
        replace_config(
            gw,
            prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
            f"""name: targets-{u}
type: gateway-notification-targets
targets:
  "slack:#ai-budget-alerts": {{kind: slack, url: "{rx.url}/slack"}}
  "pagerduty:platform": {{kind: pagerduty, url: "{rx.url}/pd", routing_key: rk-{u}}}
  "webhook:finops": {{kind: webhook, url: "{rx.url}/hook", headers: {{x-token: t-{u}}}}}
""",
            budget_doc(
                f"b-{u}",
                f"""  - id: {budget}
    scope: {{subjects: ["user:alerted-{u}"]}}
    ceiling_usd: 0.05
    window: daily
    alerts:
      - {{at_pct: 50, notify: ["slack:#ai-budget-alerts", "pagerduty:platform"]}}
      - {{at_pct: 100, notify: ["slack:#ai-budget-alerts", "pagerduty:platform", "webhook:finops"]}}
    on_exceed: hard_block
""",
            ),
        )
        key = new_key(gw, user_id=f"alerted-{u}")
        statuses, slowest = [], 0.0
        for _ in range(8):  # $0.01 each; the 50% alert fires at 60%, the 100% one on refusal
            started = time.monotonic()
            statuses.append(chat(gw, key, max_tokens=10, content=LONG).status_code)
            slowest = max(slowest, time.monotonic() - started)
        assert statuses == [200] * 5 + [429] * 3
        assert slowest < 0.9  # delivery (the receiver stalls 1 s) never holds a request

        def delivered():
            rows = [a for a in gw.admin.get("/api/alerts").json()["data"] if a["rule_id"] == budget]
            return len(rows) == 2 and all(a["delivered"] for a in rows) and rows

        alerts = wait_for(delivered, timeout=10)
        slack, pd, hook = rx.bodies("/slack"), rx.bodies("/pd"), rx.bodies("/hook")
    assert (len(slack), len(pd), len(hook)) == (3, 3, 2)  # first posts failed, then retried
    texts = [body["text"] for body in slack]
    assert sum("reached 50%" in t for t in texts) == 2  # the failed post and its retry
    assert sum("reached 100%" in t for t in texts) == 1
    assert all(budget in text and "$0.05" in text for text in texts)
    assert all(p["routing_key"] == f"rk-{u}" and p["event_action"] == "trigger" for p in pd)
    assert sorted(p["payload"]["severity"] for p in pd) == ["critical", "warning", "warning"]
    assert len({p["dedup_key"] for p in pd}) == 2
    assert hook[0] == hook[1] and hook[1]["rule_id"] == budget
    assert hook[1]["threshold_pct"] == 100
    assert hook[1]["ceiling_usd"] == 0.05 and hook[1]["resets_at"]
    assert next(h for h in rx.hits if h["path"] == "/hook")["headers"]["x-token"] == f"t-{u}"
    by_threshold = {a["payload"]["threshold_pct"]: a for a in alerts}
    assert set(by_threshold) == {50, 100}
    assert all(a["attempts"] >= 2 and "HTTP 500" in a["last_error"] for a in alerts)


# --- the counter store unreachable --------------------------------------------------
def test_unreachable_redis_fails_open_or_closed_as_configured(tmp_path):
    u = uid()
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        rate_doc(
            "limits",
            f"""  - id: one-{u}
    limit: {{requests: 1, window: 1h, scope: key}}
""",
        )
        + "---\n"
        + budget_doc(
            "money",
            f"""  - id: money-{u}
    ceiling_usd: 100
    window: monthly
""",
        )
    )
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    with run_gateway(
        f"sqlite:///{tmp_path / 'open.db'}",
        "--redis-url",
        nowhere,
        "--counter-failure-mode",
        "fail_open",
        "--config",
        str(policy),
    ) as opened:
        key = new_key(opened)
        answers = [chat(opened, key) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]  # the limit is 1
        assert all(
            events(row) == [("counter-store", "fail_open")] for row in rows_for(opened, answers)
        )
        ready = httpx.get(opened.url + "/readyz").json()
        assert ready["ready"] is True
        counters = ready["checks"]["counters"]
        assert (counters["ok"], counters["mode"], counters["backend"]) == (
            False,
            "fail_open",
            "redis",
        )
        assert "unavailable" in counters["error"]
        assert (
            "counter store unavailable, admitting every request (fail_open)" in opened.proc.output()
        )

    port = free_port()
    closed = ServerProcess(
        [
            *run_args(port, f"sqlite:///{tmp_path / 'closed.db'}"),
            "--redis-url",
            nowhere,
            "--counter-failure-mode",
            "fail_closed",
            "--config",
            str(policy),
        ],
        f"http://127.0.0.1:{port}/healthz",
        env={"SLUICEGATE_ADMIN_KEY": ADMIN_KEY},
    )
    with closed:
        url = f"http://127.0.0.1:{port}"
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["counters"]["ok"] is False
        key = httpx.post(
            url + "/api/keys", json={"name": "k"}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ).json()["key"]
        refused = chat(url, key)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "store_unavailable"
        ledger = httpx.get(
            url + "/api/requests", headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ).json()["data"]
        (row,) = [r for r in ledger if r["request_id"] == refused.headers["x-sluice-request-id"]]
        assert row["status_code"] == 503 and events(row) == [("counter-store", "fail_closed")]
        assert "admitting nothing (fail_closed)" in closed.output()


def run_args(port: int, database_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sluicegate.cli.main",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
