from django.contrib import admin
from django.urls import include, path

from merumaga.subscribers import views as subscriber_views

urlpatterns = [
    path("", subscriber_views.home, name="home"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/mail/", include("merumaga.delivery.urls")),
    path("admin/", admin.site.urls),
    path("", include("merumaga.subscribers.urls")),
]
