"""Every list and form the admin exposes, at a desktop's and a phone's width: the page never
scrolls sideways (a wide table scrolls inside its own box, as the theme's lists do on a phone),
and the Content-Security-Policy blocks nothing the page needs.
The walk takes its pages from the admin's registry, so a new page is checked without a word."""

import pytest
from django.contrib import admin
from django.urls import reverse

from merumaga import demo
from merumaga.testing import log_in, mailing_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": 1280, "phone": 390}


def admin_pages() -> list[str]:
    pages = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        first = model_admin.get_queryset(_superuser_request()).order_by("pk").first()
        if first is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
        if model_admin.has_add_permission(_superuser_request()):
            pages.append(reverse("admin:{}_{}_add".format(*info)))
    return pages


def _superuser_request():
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.filter(is_superuser=True).first()
    return request


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_no_admin_page_scrolls_sideways(screen, live_server, page, settings, django_user_model):
    settings.SITE_URL = live_server.url
    demo.load_demo_readers()
    demo.load_demo_content()
    mailing_of("weekly")
    editor = django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    # Records of the operators' pages too: an API token, a doctor's answer.
    from merumaga.api.services import create_token
    from merumaga.operations.models import DoctorRun

    create_token(editor, ["readers:read"], name="CRM連携")
    DoctorRun.objects.create(
        fail=1,
        findings=[
            {
                "check": "spf",
                "status": "fail",
                "message": "mail.example.jp にSPFレコードがありません。",
                "fix": 'mail.example.jp. TXT "v=spf1 ip4:203.0.113.25 '
                'include:_spf.relay.example.net -all"',
            }
        ],
    )
    width = WIDTHS[screen]
    page.set_viewport_size({"width": width, "height": 900})
    # Anything the Content-Security-Policy blocks (a script, a style, a frame) is reported here.
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    log_in(page, live_server, "editor", "pw-for-test")

    pages = admin_pages()
    # Every list, and the records and forms the demo data gives.
    assert len(pages) > 2 * len(admin.site._registry)
    opened = {path.split("/")[2] for path in pages if path.endswith("/change/")}
    assert {"mailings", "publishing", "subscribers"} <= opened
    too_wide, boxless = {}, {}
    for path in pages:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            too_wide[path] = scroll_width
        # A field drawn without a box (a plain widget in the theme's form) cannot be seen.
        unseen = page.evaluate(
            """() => [...document.querySelectorAll(
                    '#content form input:is([type=text],[type=email],[type=url],[type=number],'
                    + '[type=password],[type=search]), #content form textarea')]
                // Named fields only: the list's search (q) and a picker's own search are boxed.
                .filter(e => e.offsetParent !== null && e.name && e.name !== 'q'
                    && getComputedStyle(e).borderTopWidth === '0px')
                .map(e => e.name)"""
        )
        if unseen:
            boxless[path] = unseen
    assert too_wide == {}
    assert boxless == {}
    assert refused == []
