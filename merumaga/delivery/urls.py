from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.urls import path

from merumaga.delivery import progress, views

app_name = "mailcatcher"

# admin_view: staff only (others go to the admin login), never cached, CSRF-protected; then the
# page's permission: caught mail holds readers' addresses and working links (personal data).
caught_mail = permission_required("delivery.view_caught_mail", raise_exception=True)
a_mailing = permission_required("mailings.view_mailing", raise_exception=True)

urlpatterns = [
    path("", admin.site.admin_view(caught_mail(views.message_list)), name="list"),
    path(
        "progress/<int:mailing_id>/",
        admin.site.admin_view(a_mailing(progress.progress)),
        name="progress",
    ),
    path("<str:key>/", admin.site.admin_view(caught_mail(views.message_detail)), name="detail"),
    path("<str:key>/html/", admin.site.admin_view(caught_mail(views.message_html)), name="html"),
    path("<str:key>/raw/", admin.site.admin_view(caught_mail(views.message_raw)), name="raw"),
]
