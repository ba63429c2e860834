from django.urls import path

from merumaga.bounces import webhooks

app_name = "bounces"

# Posted to by machines (SNS, relays): no session, no CSRF token; each view checks a signature.
urlpatterns = [
    path("ses/", webhooks.ses, name="ses"),
    path("webhook/", webhooks.webhook, name="webhook"),
]
