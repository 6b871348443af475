"""POST /api/config/what-if: a config change replayed on the ledger, nothing applied.

The body is what `POST /api/config` takes (YAML or JSON documents; `?replace=true`,
`?strict=true` as there), validated exactly as an apply would be (an invalid change is the
same 400 listing every problem). `?window=7d` (a duration, at most 31 days; 7d when
absent) is how much of the ledger to replay, ending `?until=` (unix seconds, ISO-8601 or
an age like 1d; now when absent). Roles: admin and platform. The answer is
`whatif.WhatIfReport` as JSON (docs/what-if.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.errors import InvalidRequest
from sluicegate.server.admin_api import parse_time
from sluicegate.server.admin_config import applied_by, body_format, body_text, flag, json_response
from sluicegate.server.roles import Role, require_role
from sluicegate.whatif.service import WhatIf
from sluicegate.whatif.window import replay_window

WHAT_IF_PATH = "/api/config/what-if"
DEFAULT_WINDOW = "7d"
MAX_AHEAD_S = 366 * 86400  # `until` at most this far ahead (calendar windows stay in range)

GetWhatIf = Callable[[Request], WhatIf]


def what_if_routes(get_what_if: GetWhatIf) -> list[Route]:
    async def what_if(request: Request) -> Response:
        require_role(request, Role.PLATFORM)
        query = request.query_params
        now = time.time()
        until = parse_time(query.get("until"), "until")
        if until is not None and until > now + MAX_AHEAD_S:
            raise InvalidRequest(
                "until: the window must end within a year from now (the ledger holds no "
                "later requests)",
                param="until",
            )
        end = now if until is None else until
        window = replay_window(query.get("window") or DEFAULT_WINDOW, end)
        replace, strict = flag(request, "replace"), flag(request, "strict")
        text = await body_text(request)
        report = await get_what_if(request).run(
            text,
            window,
            applied_by=applied_by(request),
            replace=replace,
            strict=strict,
            format=body_format(request),
        )
        return json_response(msgspec.to_builtins(report))

    return [Route(WHAT_IF_PATH, what_if, methods=["POST"])]
