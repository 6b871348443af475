"""Pages from templates: the Jinja2 environment (autoescaped), the cell formatting every
table uses, and the response headers every page carries (no caching of figures, a
Content-Security-Policy that admits only the package's own scripts and styles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from sluicegate.analytics.cells import shown
from sluicegate.errors import SluiceError

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def cell(row: Any, key: str) -> str:
    """A row's value at a dotted key, formatted as `sluicegate report` prints it."""
    return shown(row, key)


class Pages:
    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("sluicegate.ui", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.globals["cell"] = cell

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = self._env.get_template(template).render(**values)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def error(self, exc: SluiceError, **values: Any) -> HTMLResponse:
        return self.render(
            "error.html",
            status=exc.status,
            title=f"{exc.status}: {exc.code or exc.error_type}",
            message=exc.message,
            param=exc.param,
            **values,
        )
