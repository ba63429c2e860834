"""The API's interactive documentation in Chromium: drawn from our own static files, under the
site's Content-Security-Policy, and able to call the API with a token."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_interactive_documentation_works_under_the_sites_policy(live_server, page, roles):
    from merumaga.testing import ApiClient

    token = ApiClient().raw
    refused, elsewhere = [], []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server.url) else elsewhere.append(request.url)
        ),
    )
    page.goto(f"{live_server.url}/api/v1/docs")
    page.get_by_text("merumaga API").first.wait_for()
    # Authorise with the token, then try GET /topics as a reader of the page would.
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux input").first.fill(token)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()
    operation = page.locator(".opblock").filter(
        has=page.locator(".opblock-summary-path", has_text="/api/v1/topics")
    )
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tbody .response-col_status")
    assert answer.first.inner_text(timeout=10_000).strip() == "200"
    assert "週報" in operation.locator(".live-responses-table tbody").inner_text()
    assert refused == []
    assert elsewhere == []
