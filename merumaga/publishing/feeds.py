from django.conf import settings
from django.contrib.syndication.views import Feed
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from merumaga.institute.services import sender_identity
from merumaga.publishing.models import Article


class ArticleFeed(Feed):
    feed_type = Atom1Feed
    link = "/articles/"

    def title(self) -> str:
        return sender_identity().organisation_name

    def subtitle(self) -> str:
        return _("記事 (要約)")

    def items(self):
        return Article.objects.published()[:30]

    def item_title(self, item: Article) -> str:
        return item.title

    def item_description(self, item: Article) -> str:
        return item.digest

    def item_pubdate(self, item: Article):
        return item.published_at

    def item_updateddate(self, item: Article):
        return item.updated_at

    def item_author_name(self, item: Article) -> str:
        return item.author

    def item_link(self, item: Article) -> str:
        return f"{settings.SITE_URL}{item.get_absolute_url()}"
