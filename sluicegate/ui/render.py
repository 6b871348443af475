"""Pages from templates: the Jinja2 environment (autoescaped), the cell formatting every
table uses, and the response headers every page carries (no caching of figures, a
Content-Security-Policy that admits only the package's own scripts and styles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

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
    """A row's value at a dotted key, formatted by what it is (as `sluicegate report`
    prints it: shares as percentages, dollars to four places)."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if key.endswith(("rate", "share", "adoption")) and isinstance(value, int | float):
        return f"{value:.1%}"
    if key.endswith("usd") and isinstance(value, int | float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list | dict):
        return f"{len(value)} item(s)"
    return str(value)


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
