"""The gateway's `/emulator` path: the provider emulator when `serve --emulator` asked for
it, otherwise a JSON 404 saying it is not mounted.

The emulator (`sluicegate.emulator`) is a development tool whose fault-injection and stats
endpoints take no key, so a production `serve` must not serve it, nor even import it: the
import happens here, only when it is asked for.
"""

from __future__ import annotations

from starlette.routing import Mount
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from sluicegate.errors import NotFound
from sluicegate.server.errors import error_response
from sluicegate.server.settings import EMULATOR_MOUNT


def emulator_route(mounted: bool) -> Mount:
    """The route at EMULATOR_MOUNT, built once when the app is assembled."""
    if mounted:
        from sluicegate.emulator import create_app

        return Mount(EMULATOR_MOUNT, app=create_app())
    return Mount(EMULATOR_MOUNT, app=_not_mounted)


# Rendered once: the same answer, in the OpenAI error format the admin API uses, for every
# path under the mount.
_NOT_MOUNTED = error_response(
    "openai",
    NotFound(
        "the provider emulator is not mounted on this gateway "
        "(a development tool: `sluicegate serve --emulator`)",
        code="emulator_not_mounted",
    ),
)


async def _not_mounted(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await WebSocketClose()(scope, receive, send)
        return
    await _NOT_MOUNTED(scope, receive, send)
