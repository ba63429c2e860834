from django.conf import settings
from django.utils.functional import SimpleLazyObject

from merumaga.institute.services import sender_identity


def institute(request):
    # Lazy: pages that never show the sender (admin lists) pay no query for it.
    return {"institute": SimpleLazyObject(sender_identity), "site_url": settings.SITE_URL}
