import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from merumaga.mailings.models import Mailing
from merumaga.testing import make_article, make_subscriber

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


def test_with_a_report_waiting_it_is_refreshed_not_doubled():
    make_article("記事", published_at=timezone.now() - timedelta(hours=2))
    first = run()
    make_article("次の記事", published_at=timezone.now() - timedelta(hours=1))
    err = io.StringIO()
    out = io.StringIO()
    call_command("compose-weekly", stdout=out, stderr=err)
    assert out.getvalue().strip() == first
    assert "1 articles added, 0 taken out, 2 in all" in err.getvalue()
    assert Mailing.objects.count() == 1


def test_with_a_report_waiting_and_nothing_new_it_says_so_instead_of_nothing_new():
    make_article("記事", published_at=timezone.now() - timedelta(hours=2))
    first = run()
    err = io.StringIO()
    out = io.StringIO()
    call_command("compose-weekly", stdout=out, stderr=err)
    assert out.getvalue().strip() == first
    assert "was waiting to be sent: 0 articles added" in err.getvalue()
