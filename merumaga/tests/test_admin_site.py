"""The admin's sidebar groups the sections as editors work, and loses no model."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from merumaga.admin_site import SECTIONS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]


def test_every_admin_model_is_in_a_named_section():
    registered = {f"{m._meta.app_label}.{m._meta.object_name}" for m in admin.site._registry}
    grouped = {member for _, _, members in SECTIONS for member in members}
    assert registered == grouped  # a new admin page must be given a section


def sidebar_of(page: str) -> str:
    start = page.index('id="nav-sidebar-apps"')
    return page[start : page.index("</nav>", start)]


def section_titles(sidebar: str) -> list[str]:
    return [title.strip() for title in re.findall(r"<h2[^>]*>([^<]+)<", sidebar)]


def test_the_sidebar_shows_the_sections_in_order(admin_client):
    sidebar = sidebar_of(admin_client.get(reverse("admin:index")).content.decode())
    assert section_titles(sidebar) == [str(name) for _, name, _ in SECTIONS]  # in this order
    positions = [sidebar.index(f"{name}\n") for _, name, _ in SECTIONS]
    # Each page is where it was, linked from its section.
    mailings = reverse("admin:mailings_mailing_changelist")
    assert positions[1] < sidebar.index(f'href="{mailings}"') < positions[2]


def test_the_sidebar_shows_only_what_the_account_may_open(client):
    editor = User.objects.create_user("editor", password="pw", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="view_mailing"))
    client.force_login(editor)
    sidebar = sidebar_of(client.get(reverse("admin:index")).content.decode())
    assert reverse("admin:mailings_mailing_changelist") in sidebar
    assert reverse("admin:subscribers_subscriber_changelist") not in sidebar
    assert section_titles(sidebar) == ["配信する"]


def test_the_mail_viewer_is_in_the_sidebar_for_who_may_read_caught_mail(client):
    from django.contrib.auth.models import Group

    from merumaga.team.roles import OPERATOR, WRITER

    for role, shown in [(OPERATOR, True), (WRITER, False)]:
        member = User.objects.create_user(f"member-{shown}", password="pw", is_staff=True)
        member.groups.add(Group.objects.get(name=role))
        client.force_login(member)
        sidebar = sidebar_of(client.get(reverse("admin:index")).content.decode())
        assert (reverse("mailcatcher:list") in sidebar) is shown
