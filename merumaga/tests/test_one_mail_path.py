"""Every mail the platform sends is built by merumaga.outgoing.build and sent through Django's
mail API to the one relay backend: each kind is made here through its real entry point, and
every kind that has templates must be among them."""

import ast
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

import merumaga
from merumaga import outgoing
from merumaga.delivery.models import DomainHold
from merumaga.delivery.tasks import tell_operator_about_hold
from merumaga.mailings import rendering
from merumaga.mailings.previews import send_tests
from merumaga.publishing import tasks_rsvp
from merumaga.publishing.models import Rsvp
from merumaga.subscribers import tasks as reader_tasks
from merumaga.subscribers.models import Subscriber
from merumaga.team import tasks as team_tasks
from merumaga.testing import KINDS, mailing_of, make_event, make_subscriber

pytestmark = pytest.mark.django_db

PACKAGE = Path(merumaga.__file__).parent


@pytest.fixture
def built(monkeypatch):
    """Every mail built, as (kind, Built), in order."""
    made: list[tuple[str, outgoing.Built]] = []
    build = outgoing.build

    def spy(mail, **options):
        result = build(mail, **options)
        made.append((mail.kind, result))
        return result

    monkeypatch.setattr(outgoing, "build", spy)
    return made


def make_every_mail(settings) -> None:
    """Each kind of mail, through the code that sends it."""
    pending = make_subscriber("pending@example.jp", status=Subscriber.Status.PENDING)
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    reader_tasks.send_confirmation_mail.call_local(pending.pk)
    reader_tasks.send_welcome_mail.call_local(reader.pk)
    reader_tasks.send_stop_link_mail.call_local(reader.pk)
    reader_tasks.send_already_subscribed_mail.call_local(reader.pk)
    reader_tasks.send_address_confirmation_mail.call_local(reader.pk, "new@example.jp")
    reader_tasks.send_address_changed_mail.call_local(reader.pk, "old@example.jp")

    event = make_event(capacity=10)
    for kind, answer in tasks_rsvp.MAIL_STATES.items():
        reply = Rsvp.objects.create(event=event, email=f"{kind}@example.jp", answer=answer)
        tasks_rsvp.send_rsvp_mail.call_local(reply.pk, kind)
    tasks_rsvp.send_rsvp_request_mail.call_local(
        event.pk, "form@example.jp", "https://example.jp/events/confirm/x/", "ja"
    )

    settings.OPERATOR_EMAIL = "operator@example.jp"
    now = timezone.now()
    hold = DomainHold.objects.create(
        domain="example.net", reason="554 blocked", backoff=timedelta(minutes=5), probe_at=now
    )
    tell_operator_about_hold.call_local(hold.pk)

    staff = User.objects.create_user("editor", "editor@example.jp", "pw", is_staff=True)
    team_tasks.send_password_reset_mail.call_local(staff.pk, "https://example.jp/admin/reset/x/")

    for kind in KINDS:  # what the delivery worker sends, by the reference it is checked against
        mailing = mailing_of(kind)
        rendering.build(rendering.compile_mailing(mailing, "ja"), reader)
    send_tests(mailing, ["editor@example.jp"])


def template_kinds() -> set[str]:
    """Every mail that has templates: <app>/templates/<app>/mail/<kind>_subject.txt."""
    return {
        path.name.removesuffix("_subject.txt")
        for path in PACKAGE.glob("*/templates/*/mail/*_subject.txt")
    }


def test_every_kind_of_mail_is_built_by_the_one_builder(built, settings, mailoutbox, sender):
    make_every_mail(settings)
    kinds = {kind for kind, _ in built}
    transactional = kinds - {"mailing"}
    mailing_templates = {rendering.TEMPLATES[kind] for kind in KINDS}
    assert transactional | mailing_templates == template_kinds()

    # What was sent one at a time is exactly what was built, and went through Django's mail API
    # (in production to merumaga.delivery.transactional.RelayBackend).
    sent_one_at_a_time = [one for kind, one in built if kind != "mailing"]
    sent_one_at_a_time.append(built[-1][1])  # the test send: a mailing, sent one at a time
    assert [message.built for message in mailoutbox] == sent_one_at_a_time

    for kind, one in built:
        message = message_from_bytes(one.data, policy=policy.default)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert message["From"].addresses[0].addr_spec == sender.from_email, kind
        assert message["Date"].endswith("+0900"), kind
        # The sender's identity (特定電子メール法) at the foot of both parts of every mail.
        for part in (text, html):
            assert sender.postal_address in part and sender.contact_email in part, kind
        to_a_reader = one.to in ("reader@example.jp", "pending@example.jp")
        if to_a_reader or kind == "mailing":
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", kind
            assert "/unsubscribe/" in message["List-Unsubscribe"], kind


def test_nothing_else_builds_or_sends_mail():
    """Only outgoing.py builds messages; only it and the relay backend use Django's mail API;
    only the delivery engine's pool speaks SMTP to a relay (the doctor only greets it)."""
    allowed = {
        "email.mime": set(),
        # The doctor opens an SMTP session to see STARTTLS and the certificate; it sends nothing.
        "smtplib": {"operations/doctor.py"},
        "django.core.mail": {"outgoing.py", "delivery/transactional.py"},
        "aiosmtplib": {"delivery/smtp.py"},
    }
    found: dict[str, set[str]] = {name: set() for name in allowed}
    builders = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if "/tests/" in f"/{relative}" or relative == "testing.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                for watched in allowed:
                    if name == watched or name.startswith(f"{watched}."):
                        found[watched].add(relative)
            if isinstance(node, ast.Attribute) and node.attr == "build_message":
                builders.add(relative)
    assert found == allowed
    assert builders == {"outgoing.py"}
