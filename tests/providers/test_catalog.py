"""The default catalogue: the real APIs on a production `serve`; the mounted emulator (only
with `serve --emulator`) for a provider whose credential variable is unset."""

from __future__ import annotations

from sluicegate.providers.catalog import build_catalog, default_document
from sluicegate.providers.config import ProvidersDocument
from sluicegate.providers.upstream import FakeUpstream, UpstreamResponse
from sluicegate.server.settings import Settings

EMULATOR = "http://127.0.0.1:8340/emulator"


async def _unused(method: str, url: str, headers: dict[str, str], body: bytes | None):
    return UpstreamResponse(status=500, headers={}, body=b"")


def _base_urls(emulator_url: str | None, env: dict[str, str]) -> dict[str, str]:
    doc = default_document(emulator_url, env)
    return {account.name: account.base_url for account in doc.providers}


def test_serve_workers_have_no_emulator_unless_asked() -> None:
    """Settings travel to granian workers through SLUICEGATE_* variables."""
    assert Settings.from_env({}).emulator is False
    assert Settings.from_env({}).emulator_url is None
    on = Settings.from_env({"SLUICEGATE_EMULATOR": "1", "SLUICEGATE_PORT": "9000"})
    assert on.emulator_url == "http://127.0.0.1:9000/emulator"
    assert Settings.from_env(on.to_env()).emulator_url == on.emulator_url
    off = Settings.from_env(Settings(emulator=False).to_env())
    assert off.emulator is False


def test_without_the_emulator_the_default_catalogue_calls_the_real_apis() -> None:
    doc = default_document(None, {})
    assert {a.name: (a.base_url, a.api_key_env) for a in doc.providers} == {
        "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
        "anthropic": ("https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    }
    catalog = build_catalog(
        [], FakeUpstream(_unused), emulator_url=Settings.from_env({}).emulator_url, env={}
    )
    assert catalog.emulated == ()
    assert catalog.model("gpt-4o-mini").provider == "openai"
    assert catalog.model("haiku").provider == "anthropic"


def test_with_the_emulator_providers_without_credentials_go_to_it() -> None:
    assert _base_urls(EMULATOR, {}) == {
        "openai": EMULATOR + "/v1",
        "anthropic": EMULATOR,
    }
    assert _base_urls(EMULATOR, {"OPENAI_API_KEY": "sk-real"}) == {
        "openai": "https://api.openai.com/v1",
        "anthropic": EMULATOR,
    }
    catalog = build_catalog(
        [], FakeUpstream(_unused), emulator_url=EMULATOR, env={"ANTHROPIC_API_KEY": "k"}
    )
    assert catalog.emulated == ("openai",)


def test_a_price_applies_by_the_configured_name_whatever_the_upstream_name() -> None:
    doc = ProvidersDocument.model_validate(
        {
            "name": "p",
            "type": "gateway-providers",
            "providers": [{"name": "local", "kind": "openai", "base_url": "http://h/v1"}],
            "models": {
                "fast": {
                    "provider": "local",
                    "model": "llama-3-8b",
                    "price": {"input_mtok": 1, "output_mtok": 2},
                },
                "mini": {"provider": "local", "model": "gpt-4o-mini"},
                "discounted": {
                    "provider": "local",
                    "model": "gpt-4o-mini",
                    "price": {"input_mtok": 0.01, "output_mtok": 0.02},
                },
            },
            "prices": {"slow": {"input_mtok": 5, "output_mtok": 6}},
        }
    )
    catalog = build_catalog([doc], FakeUpstream(_unused), emulator_url=None, env={})
    fast = catalog.rate("local", "llama-3-8b", "fast")
    assert fast is not None and (fast.input_mtok, fast.output_mtok) == (1, 2)
    # the override is the configured name's: the same upstream model under another name
    # keeps the catalogue's price
    discounted = catalog.rate("local", "gpt-4o-mini", "discounted")
    assert discounted is not None and discounted.input_mtok == 0.01
    plain = catalog.rate("local", "gpt-4o-mini", "mini")
    assert plain is not None and plain.input_mtok > 0.01
    assert catalog.rate("local", "llama-3-8b") is None  # a raw name: unpriced
    assert catalog.rate("nowhere", "llama-3-8b", "fast") is None
    assert catalog.rate_of("fast") == fast
    assert catalog.rate_of("gpt-4o") is not None  # not in this catalog: by name
    assert catalog.rate_of("never-heard-of-it") is None
