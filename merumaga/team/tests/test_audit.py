"""The audit log: what people change, who and when, with personal data only marked as changed;
append-only; nothing for the platform's own work."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from merumaga.audit import acting_as
from merumaga.mailings import services as mailing_services
from merumaga.publishing.models import Article
from merumaga.team.models import AuditEntry
from merumaga.team.roles import WRITER
from merumaga.testing import mailing_of, make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]


def test_a_change_is_logged_with_its_fields_before_and_after(admin_user):
    article = Article.objects.create(title="旧題", digest="要約。", body="本文。")
    with acting_as(admin_user, "admin"):
        article.title = "新題"
        article.save()
    entry = AuditEntry.objects.get(action="publishing.Article.change")
    assert (entry.user, entry.username, entry.via) == (admin_user, "admin", "admin")
    assert entry.changes == {"title": ["旧題", "新題"]}
    assert entry.object_id == str(article.pk) and entry.object_repr == "新題"


def test_personal_data_is_marked_as_changed_never_copied(admin_user):
    reader = make_subscriber("hanako@example.jp", name="山田 花子")
    with acting_as(admin_user, "admin"):
        reader.name = "佐藤 花子"
        reader.save()
    entry = AuditEntry.objects.get(action="subscribers.Subscriber.change")
    assert entry.changes == {"name": ["(…)", "(…)"]}
    assert "花子" not in str(entry.changes) + entry.object_repr
    assert "hanako" not in entry.object_repr


def test_a_mailing_started_from_the_admin_is_logged(admin_client, admin_user):
    make_subscriber("reader@example.jp")
    weekly = mailing_of("weekly")
    admin_client.post(reverse("admin:mailings_mailing_start", args=[weekly.pk]))
    entry = AuditEntry.objects.get(action="mailings.Mailing.change", object_id=str(weekly.pk))
    assert entry.user == admin_user and entry.changes["status"] == ["draft", "sending"]


def test_roles_given_and_taken_are_logged(admin_user):
    editor = User.objects.create_user("editor", is_staff=True)
    writers = Group.objects.get(name=WRITER)
    with acting_as(admin_user, "admin"):
        editor.groups.add(writers)
        editor.groups.remove(writers)
    given, taken = AuditEntry.objects.filter(action="auth.User.groups").order_by("id")
    assert given.changes == {"groups": [f"+{WRITER}"]}
    assert taken.changes == {"groups": [f"-{WRITER}"]}


def test_an_export_from_the_command_line_is_logged(tmp_path):
    make_subscriber("reader@example.jp")
    with acting_as(None, "cli"):
        call_command("export-subscribers", "-o", str(tmp_path / "readers.csv"))
    entry = AuditEntry.objects.get(action="subscribers.export")
    assert entry.via == "cli" and entry.username.startswith("cli:")
    assert entry.changes == {"rows": 1}


def test_the_platforms_own_work_is_not_logged_here():
    make_subscriber("reader@example.jp")
    mailing_services.start(mailing_of("weekly"))  # the scheduler or a worker: nobody acting
    assert not AuditEntry.objects.exists()


def test_the_log_is_append_only_and_exported_as_csv(admin_client, admin_user):
    with acting_as(admin_user, "admin"):
        Article.objects.create(title="記事", digest="要約。", body="本文。")
    entry = AuditEntry.objects.get()
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    change = reverse("admin:team_auditentry_change", args=[entry.pk])
    assert "変更前" in admin_client.get(change).content.decode()
    assert (
        admin_client.post(reverse("admin:team_auditentry_delete", args=[entry.pk])).status_code
        == 403
    )
    response = admin_client.post(
        reverse("admin:team_auditentry_changelist"),
        {"action": "export_csv", "_selected_action": [entry.pk]},
    )
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("at,username,via,action") and "publishing.Article.create" in lines[1]
