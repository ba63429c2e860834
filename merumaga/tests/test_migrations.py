import io

import pytest
from django.core.management import call_command

from merumaga.subscribers.models import Topic


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_the_four_mailings_exist_after_migrating():
    assert list(Topic.objects.values_list("key", flat=True)) == [
        "weekly",
        "articles",
        "reports",
        "events",
    ]
