"""The OpenAPI description stays true: every route the app registers is described, every
described operation is served, and the description is served without a key."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Mount, Route

from sluicegate import __version__
from sluicegate.server.app import Gateway
from sluicegate.server.openapi import openapi_document
from sluicegate.server.settings import EMULATOR_MOUNT
from sluicegate.wire.registry import WIRES
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway

_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # Starlette's {version:int} is OpenAPI's {version}


def served_operations(gateway: Gateway) -> set[tuple[str, str]]:
    gateway.asgi()  # builds the route table
    served = {(wire.path, "post") for wire in WIRES.values()}  # the hot path, ahead of routing
    for route in gateway.route_table:
        if isinstance(route, Mount):
            # the provider emulator (`--emulator`, for demos and tests) is its own API
            assert route.path == EMULATOR_MOUNT
            continue
        assert isinstance(route, Route), route
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                served.add((_CONVERTER.sub(r"{\1}", route.path), method.lower()))
    return served


def described_operations() -> set[tuple[str, str]]:
    paths = openapi_document(__version__)["paths"]
    return {(path, method) for path, item in paths.items() for method in item}


def test_every_registered_route_is_described_and_nothing_else(tmp_path: Path) -> None:
    served = served_operations(Gateway(settings_for(tmp_path)))
    described = described_operations()
    assert served - described == set(), "routes missing from sluicegate/server/openapi.py"
    assert described - served == set(), "described operations the app does not serve"


async def test_the_description_is_served_without_a_key(gw: InProcessGateway) -> None:
    response = await gw.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document == openapi_document(__version__)
    assert "in-process-admin-key" not in response.text
