"""The API docs work offline: Swagger UI from the package's own assets, nothing fetched
from the internet (every non-loopback request is blocked and recorded)."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Web, need_playwright

expect = need_playwright().expect


def test_docs_render_swagger_ui_without_any_external_request(page: Any, web: Web) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("provisioner")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    page.locator(".opblock-summary-path", has_text="/api/v1/packages").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert web.external == [], web.external
    assert requested and all(u.startswith((web.base, "data:")) for u in requested), requested
    assert any(u.endswith("/static/swagger-ui/swagger-ui-bundle.js") for u in requested)
    assert page.goto("/redoc").status == 404
