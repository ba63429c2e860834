import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from merumaga.mailings.models import Mailing
from merumaga.publishing.tests.factories import make_article
from merumaga.subscribers.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("compose-weekly", *args, stdout=out)
    return out.getvalue().strip()


def test_nothing_new_is_a_clear_line_and_no_mailing():
    assert run().startswith("nothing new")
    assert not Mailing.objects.exists()


def test_prints_the_new_mailing_id():
    make_article("記事", published_at=timezone.now() - timedelta(hours=1))
    assert run() == str(Mailing.objects.get().pk)
    assert Mailing.objects.get().status == "draft"


def test_send_starts_it():
    make_subscriber()
    make_article("記事", published_at=timezone.now() - timedelta(hours=1))
    output = run("--send")
    mailing = Mailing.objects.get()
    assert output == str(mailing.pk) and mailing.status == "sending"
