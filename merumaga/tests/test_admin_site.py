"""The admin's first page groups the sections as editors work, and loses no model."""

import pytest
from django.contrib import admin
from django.urls import reverse

from merumaga.admin_site import SECTIONS

pytestmark = pytest.mark.django_db


def test_every_admin_model_is_in_a_named_section():
    registered = {f"{m._meta.app_label}.{m._meta.object_name}" for m in admin.site._registry}
    grouped = {member for _, _, members in SECTIONS for member in members}
    assert registered == grouped  # a new admin page must be given a section


def test_the_first_page_shows_the_sections_in_order(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    positions = [page.index(f'class="app-{key} module') for key, _, _ in SECTIONS]
    assert positions == sorted(positions)
    for _, name, _ in SECTIONS:
        assert f">{name}</a>" in page
    assert "app-others" not in page
    # Each page is where it was.
    assert reverse("admin:mailings_mailing_changelist") in page
    assert admin_client.get(reverse("admin:app_list", args=["mailings"])).status_code == 200
