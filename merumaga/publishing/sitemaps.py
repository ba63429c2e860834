from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from merumaga.publishing.models import Article, Event, Report


class ArticleSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Article.objects.published().only("slug", "updated_at")

    def lastmod(self, item):
        return item.updated_at


class ReportSitemap(ArticleSitemap):
    def items(self):
        return Report.objects.published().only("slug", "updated_at")


class EventSitemap(ArticleSitemap):
    def items(self):
        return Event.objects.filter(status=Event.EventStatus.PUBLISHED).only("slug", "updated_at")


class PageSitemap(Sitemap):
    changefreq = "daily"

    def items(self):
        return ["home", "article_list", "report_list", "event_list", "subscribe"]

    def location(self, item):
        return reverse(item)


SITEMAPS = {
    "pages": PageSitemap,
    "articles": ArticleSitemap,
    "reports": ReportSitemap,
    "events": EventSitemap,
}
