"""The admin's first page: readers over time, the last mailings, deliverability this week and
what needs attention (templates/admin/index.html)."""

from typing import Any

from django import template
from django.utils.translation import gettext as _

from merumaga.outcomes import charts, figures

register = template.Library()


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


@register.inclusion_tag("admin/outcomes/dashboard.html", takes_context=True)
def dashboard(context: template.Context) -> dict[str, Any]:
    topics = figures.reader_figures()
    # ?topic=<key> draws one topic's readers; anything else (or nothing), all readers.
    chosen = next((t for t in topics if t.key == context["request"].GET.get("topic")), None)
    series = figures.topic_series(chosen.key) if chosen else figures.reader_series()
    labels = [day.day.strftime("%m/%d") for day in series]
    readers_chart = charts.line_chart(
        _("読者数の推移 (過去90日)"),
        labels,
        [charts.Line(chosen.name if chosen else _("読者"), [d.readers for d in series], "#0b5cad")],
    )
    movement_chart = charts.line_chart(
        _("登録と配信停止 (過去90日)"),
        labels,
        [
            charts.Line(_("新規"), [day.joined for day in series], "#1a7f37"),
            charts.Line(_("配信停止"), [day.left for day in series], "#b42318"),
        ],
    )
    week = figures.deliverability()
    return {
        "topics": topics,
        "chosen": chosen,
        "series": series,
        "recent_days": series[-14:][::-1],
        "readers_chart": readers_chart,
        "movement_chart": movement_chart,
        "mailings": [
            {
                "mailing": mailing,
                "figures": found,
                "clicks": _percent(found.rate(found.clicks)),
                "unsubscribes": _percent(found.rate(found.unsubscribes)),
                "bounces": _percent(found.rate(found.hard_bounces + found.soft_bounces)),
            }
            for mailing, found in figures.recent_mailings()
        ],
        "week": week,
        "week_rates": {
            "hard": _percent(week.rate(week.hard_bounces)),
            "soft": _percent(week.rate(week.soft_bounces)),
            "complaints": _percent(week.rate(week.complaints)),
        },
        "complaint_level": _complaint_level(week),
        "warning": _percent(figures.COMPLAINT_WARNING),
        "limit": _percent(figures.COMPLAINT_LIMIT),
        "attention": figures.attention(),
        "reasons": _reasons(),
    }


def _complaint_level(week: figures.Deliverability) -> str:
    rate = week.rate(week.complaints)
    if rate is None or rate < figures.COMPLAINT_WARNING:
        return "ok"
    return "warning" if rate < figures.COMPLAINT_LIMIT else "limit"


def _reasons() -> list[dict[str, Any]]:
    """Each reason with its total, and the topics it was given for (narrow enough for a phone)."""
    topics = [*figures.reason_topics(), _("すべて")]
    rows = []
    for label, counts in figures.unsubscribe_reasons():
        detail = ", ".join(
            f"{topic} {count}" for topic, count in zip(topics, counts, strict=True) if count
        )
        rows.append({"label": label, "total": sum(counts), "detail": detail})
    return rows
