from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

from merumaga.views import favicon, switch_language

handler400 = "merumaga.views.bad_request"
handler403 = "merumaga.views.permission_denied"
handler404 = "merumaga.views.page_not_found"
handler500 = "merumaga.views.server_error"

urlpatterns = [
    path("language/<str:code>/", switch_language, name="switch_language"),
    path("favicon.ico", favicon, name="favicon"),
    # Cover images. A large site lets the front web server (nginx) serve /media/ instead.
    path("media/covers/<path:path>", serve, {"document_root": settings.MEDIA_ROOT / "covers"}),
    path("admin/mail/", include("merumaga.delivery.urls")),
    path("bounces/", include("merumaga.bounces.urls")),
    path("admin/", admin.site.urls),
    path("", include("merumaga.mailings.urls")),
    path("", include("merumaga.subscribers.urls")),
    path("", include("merumaga.publishing.urls")),
]
