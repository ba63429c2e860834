from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from merumaga.api.v1 import api
from merumaga.operations import views as operations_views
from merumaga.team import views as team_views
from merumaga.team.forms import StaffPasswordResetForm
from merumaga.views import favicon, media, switch_language

handler400 = "merumaga.views.bad_request"
handler403 = "merumaga.views.permission_denied"
handler404 = "merumaga.views.page_not_found"
handler500 = "merumaga.views.server_error"

urlpatterns = [
    # For load balancers and the operator's monitoring (README: Operations).
    path("healthz", operations_views.healthz, name="healthz"),
    path("readyz", operations_views.readyz, name="readyz"),
    path("metrics", operations_views.prometheus, name="metrics"),
    path("language/<str:code>/", switch_language, name="switch_language"),
    path("favicon.ico", favicon, name="favicon"),
    # Cover images. A large site lets the front web server (nginx) serve /media/ instead.
    path("media/covers/<path:path>", media, {"document_root": settings.MEDIA_ROOT / "covers"}),
    # The institute's logo, shown in the weekly report as a hosted image.
    path("media/site/<path:path>", media, {"document_root": settings.MEDIA_ROOT / "site"}),
    path("admin/mail/", include("merumaga.delivery.urls")),
    path("bounces/", include("merumaga.bounces.urls")),
    # Staff who forgot their password (the link on the admin's login page).
    path(
        "admin/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=StaffPasswordResetForm),
        name="admin_password_reset",
    ),
    path(
        "admin/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "admin/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "admin/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    # Two-factor authentication (merumaga.team.views).
    path("admin/2fa/", team_views.verify, name="two_factor_verify"),
    path("admin/2fa/setup/", team_views.setup, name="two_factor_setup"),
    path(
        "admin/2fa/passkeys/<int:passkey_id>/remove/",
        team_views.remove_passkey,
        name="two_factor_remove_passkey",
    ),
    # The passkey ceremonies (django-otp-webauthn's JSON views and its scripts' words).
    path("admin/2fa/webauthn/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("merumaga.mailings.urls")),
    path("", include("merumaga.subscribers.urls")),
    path("", include("merumaga.publishing.urls")),
]
