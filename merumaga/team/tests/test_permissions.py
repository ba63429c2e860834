"""Every page the admin exposes, opened by an account of each role: each page checks the
permission of what it shows or does, and the roles hold what the README says.

The walk takes the URLs from the admin's URL patterns and the mail viewer's: a page added later
fails here until it is given a line in PAGES (what permission it needs), or, for the generic
list/add/change/delete/history pages, by the model's own admin checks."""

from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from merumaga import demo
from merumaga.bounces import services as bounce_services
from merumaga.delivery.catcher import list_messages
from merumaga.mailings import services as mailing_services
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Suppression
from merumaga.team.roles import ADMINISTRATOR, ANALYST, OPERATOR, ROLES, SENDER, WRITER
from merumaga.testing import mailing_of, make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

STAFF = "staff"  # any staff account, whatever its permissions
SKIP = "skip"  # not a page: a redirect elsewhere, the catch-all, the login and logout

# Custom pages: the permission each needs (POST: the page only takes a form's post).
PAGES: dict[str, tuple[str, str]] = {
    "admin:index": ("GET", STAFF),
    "admin:search": ("GET", STAFF),
    "admin:password_change": ("GET", STAFF),
    "admin:password_change_done": ("GET", STAFF),
    "admin:jsi18n": ("GET", STAFF),
    "admin:login": ("GET", SKIP),
    "admin:logout": ("GET", SKIP),
    "admin:view_on_site": ("GET", SKIP),
    "admin:autocomplete": ("GET", SKIP),  # answers only for a field the account may edit
    "admin:app_list": ("GET", SKIP),  # per app: Django's own module check (404 without it)
    "admin:subscribers_subscriber_import": ("GET", "subscribers.import_subscriber"),
    "admin:publishing_article_preview": ("POST", "publishing.view_article"),
    "admin:publishing_article_digest_draft": ("POST", "publishing.change_article"),
    # A draft asked of the language model: only its requester reads it (others get a 404).
    "admin:publishing_article_digest_draft_state": ("GET", STAFF),
    "admin:publishing_article_jis_check": ("POST", "publishing.view_article"),
    "admin:publishing_report_preview": ("POST", "publishing.view_report"),
    "admin:publishing_report_jis_check": ("POST", "publishing.view_report"),
    "admin:publishing_event_preview": ("POST", "publishing.view_event"),
    "admin:publishing_event_jis_check": ("POST", "publishing.view_event"),
    "admin:mailings_mailing_compose_weekly": ("POST", "mailings.add_mailing"),
    "admin:mailings_mailing_jis_check": ("POST", "mailings.view_mailing"),
    "admin:mailings_mailing_preview": ("GET", "mailings.view_mailing"),
    "admin:mailings_mailing_preview_html": ("GET", "mailings.view_mailing"),
    "admin:mailings_mailing_preface_draft": ("POST", "mailings.change_mailing"),
    "admin:mailings_mailing_test_send": ("POST", "mailings.test_send_mailing"),
    "admin:mailings_mailing_approve": ("POST", "mailings.approve_mailing"),
    "admin:mailings_mailing_start": ("POST", "mailings.send_mailing"),
    "admin:mailings_mailing_schedule": ("POST", "mailings.send_mailing"),
    "admin:mailings_mailing_pause": ("POST", "mailings.send_mailing"),
    "admin:mailings_mailing_resume": ("POST", "mailings.send_mailing"),
    "admin:mailings_mailing_cancel": ("POST", "mailings.send_mailing"),
    "admin:bounces_rates": ("GET", "bounces.view_bounceevent"),
    "admin:auth_user_password_change": ("GET", "auth.change_user"),
    "admin:outcomes_readers_csv": ("GET", "outcomes.view_mailingreport"),
    "mailcatcher:list": ("GET", "delivery.view_caught_mail"),
    "mailcatcher:detail": ("GET", "delivery.view_caught_mail"),
    "mailcatcher:html": ("GET", "delivery.view_caught_mail"),
    "mailcatcher:raw": ("GET", "delivery.view_caught_mail"),
    "mailcatcher:progress": ("GET", "mailings.view_mailing"),
}

GENERIC = ("changelist", "add", "change", "delete", "history")


@dataclass
class Page:
    name: str
    url: str
    method: str
    needs: str  # a permission, STAFF, or "admin:<model>:<view>" for a generic page


def url_names() -> list[tuple[str, URLPattern]]:
    """Every named URL under /admin/, with its namespace."""
    found = []

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            # Unnamed: Django's redirects (<id>/ to <id>/change/) and its catch-all.
            elif namespace in ("admin", "mailcatcher") and pattern.name:
                found.append((f"{namespace}:{pattern.name}", pattern))

    walk(get_resolver().url_patterns, None)
    return found


def pages(objects: dict[str, object], caught_key: str) -> list[Page]:
    generic = {
        f"admin:{m._meta.app_label}_{m._meta.model_name}_{view}": (m, view)
        for m in admin.site._registry
        for view in GENERIC
    }
    result, unknown = [], []
    for name, pattern in url_names():
        if name in generic:
            model, view = generic[name]
            obj = objects.get(model._meta.label)
            if view in ("change", "delete", "history") and obj is None:
                continue  # no row of it to open (none in the demo data)
            args = [obj.pk] if view in ("change", "delete", "history") else []
            result.append(Page(name, reverse(name, args=args), "GET", f"generic:{view}"))
            continue
        if name not in PAGES:
            unknown.append(name)
            continue
        method, needs = PAGES[name]
        if needs == SKIP:
            continue
        kwargs = {}
        route = str(pattern.pattern)
        if "<path:object_id>" in route:
            # Start, pause … are posted to a mailing that has gone out: the refusal of a move
            # it cannot make shows the permission passed, and nothing changes for the next role.
            moves = method == "POST" and needs in (
                "mailings.send_mailing",
                "mailings.approve_mailing",
            )
            kwargs["object_id"] = objects["sent" if moves else "mailings.Mailing"].pk
        if "<id>" in route:  # a user's password page
            kwargs["id"] = objects["auth.User"].pk
        if "<int:mailing_id>" in route:
            kwargs["mailing_id"] = objects["mailings.Mailing"].pk
        if "<int:pk>" in route:  # a draft request: none in the walk's data, so a 404
            kwargs["pk"] = 1
        if "<str:key>" in route:
            kwargs["key"] = caught_key
        result.append(Page(name, reverse(name, kwargs=kwargs), method, needs))
    assert unknown == [], "a page without a line in PAGES (which permission does it need?)"
    return result


@pytest.fixture
def walk_data(mail_catcher):
    """A row of every kind the admin lists, and a caught mail."""
    demo.load_demo_readers()
    demo.load_demo_content()
    reader = make_subscriber("bounced@example.jp")
    weekly = mailing_of("weekly")
    mailing_services.start(weekly)  # it has a report, and a progress page
    bounce_services.suppress_by_hand("stop@example.jp", "電話で依頼", None)
    objects: dict[str, object] = {"mailings.Mailing": weekly, "subscribers.Subscriber": reader}
    User.objects.create_user("someone", password="pw")  # a user to open
    for model in admin.site._registry:
        if model._meta.label not in objects:
            row = model._default_manager.order_by("pk").first()
            if row is not None:
                objects[model._meta.label] = row
    objects["subscribers.Suppression"] = Suppression.objects.get(reason="admin")
    objects["outcomes.MailingReport"] = weekly
    objects["sent"] = mailing_of("custom")
    Mailing.objects.filter(pk=objects["sent"].pk).update(status=Mailing.Status.SENT)
    return objects


def account(role: str | None) -> User:
    user = User.objects.create_user(f"u-{role or 'none'}", password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def test_every_admin_page_checks_its_permission_for_every_role(walk_data, mail_catcher):
    from merumaga.mailings.previews import send_tests

    send_tests(walk_data["mailings.Mailing"], ["editor@example.jp"])  # a mail in the viewer
    [caught], _count = list_messages(mail_catcher)
    walk = pages(walk_data, caught.key)
    assert len(walk) > 60

    refused_all: list[str] = []
    for role in [None, *ROLES]:
        user = account(role)
        client = Client()
        client.force_login(user)
        wrong = []
        for page in walk:
            response = (client.post if page.method == "POST" else client.get)(page.url)
            if page.needs.startswith("generic:"):
                # Django's own list/add/change/delete/history checks: never a server error,
                # and a refusal is a 403 (or a 302 back to the list after an admin's message).
                if response.status_code not in (200, 302, 403):
                    wrong.append((page.name, response.status_code))
                continue
            allowed = page.needs == STAFF or user.has_perm(page.needs)
            refused = response.status_code == 403
            if allowed == refused or response.status_code >= 500:
                wrong.append((page.name, response.status_code))
            if role is None and refused:
                refused_all.append(page.name)
        assert wrong == [], f"role {role}: pages that did not check their permission"
    # An account with no role opens only what any staff may (its own password, the first page).
    assert len(refused_all) == len([p for p in walk if not p.needs.startswith(("generic", STAFF))])


# What each role may and may not do, in the README's words.
ROLE_FACTS = [
    (WRITER, "publishing.change_article", True),
    (WRITER, "mailings.send_mailing", False),
    (WRITER, "delivery.view_caught_mail", False),
    (WRITER, "subscribers.view_subscriber", False),
    (SENDER, "mailings.send_mailing", True),
    (SENDER, "mailings.test_send_mailing", True),
    (SENDER, "subscribers.export_subscriber", False),
    (ANALYST, "outcomes.view_mailingreport", True),
    (ANALYST, "subscribers.view_subscriber", False),  # no personal data unless granted
    (ANALYST, "bounces.view_bounceevent", False),
    (OPERATOR, "subscribers.lift_suppression", True),
    (OPERATOR, "institute.change_sitesettings", True),
    (OPERATOR, "delivery.view_caught_mail", True),
    (OPERATOR, "mailings.send_mailing", False),
    (ADMINISTRATOR, "subscribers.export_subscriber", True),
    (ADMINISTRATOR, "auth.change_user", True),
]


@pytest.mark.parametrize(("role", "permission", "held"), ROLE_FACTS)
def test_each_role_holds_what_the_readme_says(role, permission, held):
    assert account(role).has_perm(permission) is held


def test_an_account_may_hold_several_roles():
    user = account(WRITER)
    user.groups.add(Group.objects.get(name=ANALYST))
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert user.has_perm("publishing.add_article") and user.has_perm("outcomes.view_mailingreport")


def test_every_admin_action_checks_a_permission():
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or []:
            function = getattr(model_admin, action) if isinstance(action, str) else action
            assert getattr(function, "allowed_permissions", None), (model, action)


def test_a_preview_never_carries_a_working_reader_link(admin_client, client):
    reader = make_subscriber("reader@example.jp", name="読者 花子")
    weekly = mailing_of("weekly")
    asked = {"subscriber": reader.pk}
    page = admin_client.get(reverse("admin:mailings_mailing_preview", args=[weekly.pk]), asked)
    assert "読者 花子" in page.content.decode()  # the chosen reader's mail, as they read it
    html = admin_client.get(
        reverse("admin:mailings_mailing_preview_html", args=[weekly.pk]), asked
    ).content.decode()
    reader_links = {
        link.split("?")[0]
        for link in (part.split('"')[0] for part in html.split('href="')[1:])
        if "/preferences/" in link or "/unsubscribe/" in link
    }
    assert len(reader_links) >= 2  # the preferences and the unsubscribe links are there
    # They act on no reader: each gets the page every bad link gets.
    for link in reader_links:
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        assert client.get(path).status_code == 404, path
    assert client.get("/unsubscribe/x/").status_code == 404  # the same as a tampered link
