"""Emulator control for tests: the fault table, request stats, and a reset.

GET    /_emulator/faults   -> {"faults": {...}}
PUT    /_emulator/faults   body {"<model or *>": {fault}} replaces the table
PATCH  /_emulator/faults   body merges by model; a null entry removes that model
DELETE /_emulator/faults   clears the table
GET    /_emulator/stats    -> {"requests": {"<model>": n}, "total": n}
POST   /_emulator/reset    clears stats, faults and prompt-cache memory
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluicegate.emulator.faults import FaultTableError, parse_fault_table
from sluicegate.emulator.state import EmulatorState


class AdminEndpoints:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/_emulator/faults", self.show_faults, methods=["GET"]),
            Route("/_emulator/faults", self.replace_faults, methods=["PUT"]),
            Route("/_emulator/faults", self.merge_faults, methods=["PATCH"]),
            Route("/_emulator/faults", self.clear_faults, methods=["DELETE"]),
            Route("/_emulator/stats", self.stats, methods=["GET"]),
            Route("/_emulator/reset", self.reset, methods=["POST"]),
        ]

    async def show_faults(self, request: Request) -> Response:
        return self._faults()

    async def replace_faults(self, request: Request) -> Response:
        try:
            self.state.replace_faults(parse_fault_table(await _json(request)))
        except FaultTableError as problem:
            return _bad_request(str(problem))
        return self._faults()

    async def merge_faults(self, request: Request) -> Response:
        try:
            raw = await _json(request)
            if not isinstance(raw, dict):
                raise FaultTableError("a fault table is a JSON object")
            removed = {model for model, entry in raw.items() if entry is None}
            kept = {model: entry for model, entry in raw.items() if entry is not None}
            self.state.merge_faults(parse_fault_table(kept), removed)
        except FaultTableError as problem:
            return _bad_request(str(problem))
        return self._faults()

    async def clear_faults(self, request: Request) -> Response:
        self.state.replace_faults({})
        return self._faults()

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})

    def _faults(self) -> Response:
        return JSONResponse({"faults": self.state.faults_json()})


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise FaultTableError(f"the body is not valid JSON ({exc})") from exc


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": {"message": message}}, status_code=400)
