"""Staff accounts: wrong passwords are throttled with a clear page, and every page carries a
Content-Security-Policy (strict on the public site, the admin's own on /admin/)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")


def log_in(client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_lock_that_name_from_that_address_for_a_while(
    client, settings, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    User.objects.create_user("editor", password="right-pw", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = log_in(client, "editor", "wrong")
        assert response.status_code == 200  # the login page again, with its error
    locked = log_in(client, "editor", "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "ログインを一時停止しています" in page and "15 分ほどたってから" in page
    # Locked: even the right password is refused now, from that address.
    assert log_in(client, "editor", "right-pw").status_code == 429
    # Another address, or another name, is not locked by it.
    assert log_in(client, "editor", "right-pw", address="198.51.100.7").status_code == 302
    client.logout()

    time_machine.move_to(
        timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False
    )
    assert log_in(client, "editor", "right-pw").status_code == 302  # to the admin


@pytest.mark.parametrize("path", ["/", "/articles/", "/events/", "/search/?q=電池", "/subscribe/"])
def test_the_public_site_runs_no_inline_script_and_is_never_framed(client, path):
    from merumaga import demo

    demo.load_demo_content()  # an event, articles, a report to show
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy and "frame-ancestors 'none'" in policy
    assert "style-src 'self'" in policy
    # No inline style or script left in the page for the policy to block.
    html = response.content.decode()
    assert "<style" not in html and " style=" not in html and "<script" not in html


def test_the_admins_inline_scripts_carry_the_pages_nonce(admin_client):
    response = admin_client.get(reverse("admin:publishing_article_add"))
    policy = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "'unsafe-eval'" in policy  # the theme's Alpine.js
    assert "frame-ancestors 'self'" in policy  # previews are framed by the admin
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.content.decode())
    assert scripts and all(f'nonce="{nonce}"' in attributes for attributes in scripts)
    assert " onclick=" not in response.content.decode()


def test_staff_reset_a_forgotten_password_by_mail(client, mailoutbox):
    User.objects.create_user("editor", "editor@example.jp", "old-pw", is_staff=True)
    User.objects.create_user("visitor", "visitor@example.jp", "pw")  # not staff: no mail
    login_page = client.get(LOGIN).content.decode()
    assert reverse("admin_password_reset") in login_page  # the theme's link shows

    for address in ("editor@example.jp", "visitor@example.jp", "nobody@example.jp"):
        response = client.post(reverse("admin_password_reset"), {"email": address})
        assert response.status_code == 302  # the same page whether the address is known
    [mail] = mailoutbox
    assert mail.to == ["editor@example.jp"] and "パスワードの再設定" in mail.subject
    link = re.search(r"https?://\S+/admin/reset/\S+/", mail.body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]

    form = client.get(path, follow=True)
    assert "新しいパスワード" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-new-Passw0rd!", "new_password2": "a-new-Passw0rd!"},
    )
    assert done.status_code == 302
    assert User.objects.get(username="editor").check_password("a-new-Passw0rd!")
    used = client.get(path, follow=True).content.decode()
    assert "このリンクは使えません" in used  # once only


def test_the_accounts_pages_name_permissions_in_the_readers_language(admin_client, roles):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="執筆")
    page = admin_client.get(f"/admin/auth/group/{group.pk}/change/").content.decode()
    assert "記事: 追加" in page and "Can add" not in page
    assert "メールマガジン配信 › 配信: テスト送信する" in page  # our own names, as written
    user = admin_client.get("/admin/auth/user/add/")
    assert user.status_code == 200
