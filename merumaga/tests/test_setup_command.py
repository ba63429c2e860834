import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from merumaga.demo import ARTICLES, READERS
from merumaga.publishing.models import Article, Event, Report
from merumaga.subscribers.models import ConsentRecord, Subscriber


@pytest.mark.django_db
def test_setup_creates_an_admin_once_and_loads_demo_readers_once(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.MEDIA_ROOT = tmp_path / "media"
    out = io.StringIO()
    call_command("setup", stdout=out)
    assert "password '" in out.getvalue()
    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
    assert Subscriber.objects.filter(status="confirmed").count() == len(READERS) >= 12
    assert ConsentRecord.objects.filter(source="demo").count() == len(READERS)
    assert (tmp_path / "static" / "merumaga" / "site.css").exists()
    assert Article.objects.published().count() == len(ARTICLES) >= 3
    assert all(article.source_name and article.digest for article in Article.objects.all())
    report = Report.objects.published().get()
    assert (tmp_path / "media" / report.pdf.name).read_bytes().startswith(b"%PDF-")
    assert Event.objects.filter(status="published").count() == 1

    again = io.StringIO()
    call_command("setup", stdout=again)
    assert "password" not in again.getvalue()
    assert get_user_model().objects.count() == 1
    assert Subscriber.objects.count() == len(READERS)
    assert Article.objects.count() == len(ARTICLES)
