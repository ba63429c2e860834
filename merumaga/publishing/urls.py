from django.contrib.sitemaps.views import sitemap
from django.urls import path

from merumaga.publishing.feeds import ArticleFeed
from merumaga.publishing.sitemaps import SITEMAPS
from merumaga.publishing.views import events, search, site

urlpatterns = [
    path("", site.home, name="home"),
    path("articles/", site.article_list, name="article_list"),
    path("articles/<str:slug>/", site.article_detail, name="article"),
    path("tags/<str:slug>/", site.tag_detail, name="tag"),
    path("reports/", site.report_list, name="report_list"),
    path("reports/<str:slug>/", site.report_detail, name="report"),
    path("reports/<str:slug>/pdf/", site.report_pdf, name="report_pdf"),
    path("archive/", site.archive_list, name="archive"),
    path("archive/<str:slug>/", site.archive_detail, name="archive_detail"),
    path("search/", search.search, name="search"),
    path("events/", events.event_list, name="event_list"),
    path("events/rsvp/<str:token>/", events.rsvp_link, name="rsvp_link"),
    path("events/answer/<str:token>/", events.rsvp_answer_link, name="rsvp_answer_link"),
    path("events/answer/<str:token>/done/", events.rsvp_done, name="rsvp_done"),
    path("events/confirm/<str:token>/", events.rsvp_request_link, name="rsvp_request_link"),
    path("events/<str:slug>/", events.event_detail, name="event"),
    path("events/<str:slug>/calendar.ics", events.event_ics, name="event_ics"),
    path("events/<str:slug>/rsvp/", events.rsvp_form, name="event_rsvp"),
    path("events/<str:slug>/rsvp/sent/", events.rsvp_request_sent, name="rsvp_request_sent"),
    # Short ASCII addresses for mail: a plain-text line holds them whole, where a Japanese
    # slug, percent-encoded, would run to three lines.
    path("a/<int:pk>/", site.short_link, {"model": "article"}, name="short_article"),
    path("r/<int:pk>/", site.short_link, {"model": "report"}, name="short_report"),
    path("e/<int:pk>/", site.short_link, {"model": "event"}, name="short_event"),
    path("feed/", ArticleFeed(), name="feed"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("robots.txt", site.robots_txt, name="robots_txt"),
]
