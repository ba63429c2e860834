"""Live progress of a mailing for the admin: counts, rate, time left, errors by reason."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from merumaga.delivery import domains, queue
from merumaga.delivery.models import Delivery
from merumaga.mailings.models import Mailing

RATE_WINDOW = timedelta(minutes=1)


def progress(request: HttpRequest, mailing_id: int) -> HttpResponse:
    mailing = get_object_or_404(Mailing, pk=mailing_id)
    counts = queue.counts(mailing.pk)
    pending = sum(counts[status] for status in queue.CLAIMABLE)
    done = counts["total"] - pending
    # Rate: rows finished in the last minute (the updated_at of final rows), per second.
    recent = Delivery.objects.filter(
        mailing=mailing,
        status__in=queue.FINAL,
        updated_at__gte=timezone.now() - RATE_WINDOW,
    ).count()
    rate = recent / RATE_WINDOW.total_seconds()
    errors = (
        Delivery.objects.filter(
            mailing=mailing, status__in=(Delivery.Status.FAILED, Delivery.Status.DEFERRED)
        )
        .values("status", "reply")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    )
    context = {
        **admin.site.each_context(request),
        "title": mailing.subject,
        "mailing": mailing,
        "counts": counts,
        "done": done,
        "percent": round(100 * done / counts["total"]) if counts["total"] else 0,
        "rate": rate,
        "eta_seconds": round(pending / rate) if rate and pending else None,
        "errors": errors,
        "holds": _holds(mailing.pk),
        "paces": domains.current_paces(),
        "live": mailing.status in (Mailing.Status.SENDING, Mailing.Status.PAUSED),
    }
    return TemplateResponse(request, "delivery/progress.html", context)


def _holds(mailing_id: int) -> list[dict]:
    """Held domains, with how many of this mailing's rows wait for each."""
    waiting = domains.waiting_for_holds(mailing_id)
    return [
        {"hold": hold, "waiting": waiting.get(domain, 0)}
        for domain, hold in sorted(domains.active_holds().items())
    ]
