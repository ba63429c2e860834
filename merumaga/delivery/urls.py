from django.contrib import admin
from django.urls import path

from merumaga.delivery import progress, views

app_name = "mailcatcher"

# admin_view: staff only (others go to the admin login), never cached, CSRF-protected.
urlpatterns = [
    path("", admin.site.admin_view(views.message_list), name="list"),
    path("progress/<int:mailing_id>/", admin.site.admin_view(progress.progress), name="progress"),
    path("<str:key>/", admin.site.admin_view(views.message_detail), name="detail"),
    path("<str:key>/html/", admin.site.admin_view(views.message_html), name="html"),
    path("<str:key>/raw/", admin.site.admin_view(views.message_raw), name="raw"),
]
