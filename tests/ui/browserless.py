"""Driving the UI over plain HTTP like a browser would, with cookies handled by hand so
that each test says exactly which cookies a request carries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import httpx

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie of a response, parsed, by cookie name (attributes kept)."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            found[name] = parsed
    return found


def csrf_of(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@dataclass
class Browser:
    """One person's cookies against the UI (a dict, sent as one Cookie header)."""

    http: httpx.AsyncClient
    cookies: dict[str, str] = field(default_factory=dict)

    async def send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        self.http.cookies.clear()  # only what this Browser holds is sent
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self.http.cookies.clear()
        for name, parsed in set_cookies(response).items():
            morsel = parsed[name]
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return response

    async def get(self, path: str, **kwargs: object) -> httpx.Response:
        return await self.send("GET", path, **kwargs)

    async def post_form(self, path: str, fields: dict[str, str]) -> httpx.Response:
        return await self.send("POST", path, data=fields)

    async def sign_in(self, token: str, next_path: str | None = None) -> httpx.Response:
        form = await self.get("/ui/sign-in")
        assert form.status_code == 200, form.text
        fields = {"csrf_token": csrf_of(form.text), "token": token}
        if next_path:
            fields["next"] = next_path
        return await self.post_form("/ui/sign-in", fields)
