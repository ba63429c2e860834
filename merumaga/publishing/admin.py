from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import UnfoldAdminTextareaWidget

from merumaga.publishing import digest, drafting, drafts, llm, markdown, services, signals
from merumaga.publishing.models import (
    ArchivedMailing,
    Article,
    DraftRequest,
    Event,
    Report,
    Rsvp,
    Status,
    Tag,
)
from merumaga.subscribers.models import Topic
from merumaga.subscribers.readers import deliverable_count
from merumaga.views import jis_check, warn_about_jis

PUBLISH_BUTTON = "_publish"
PREVIEW_ANNOUNCEMENT_BUTTON = "_preview_announcement"
DIGEST_BUDGET = 200  # characters: about three sentences of Japanese


def markdown_preview(request: HttpRequest) -> HttpResponse:
    """The rendered, sanitised HTML of the posted Markdown (staff only, via admin_view)."""
    return HttpResponse(markdown.render(request.POST.get("text", "")))


def _draft_budget(request: HttpRequest) -> int:
    try:
        return min(max(int(request.POST.get("chars", "")), 40), 1000)
    except ValueError:
        return DIGEST_BUDGET


def _draft_panel(request: HttpRequest, found: digest.Draft | None, **context) -> HttpResponse:
    context["draft"] = found
    if found is not None:
        context["sentences"] = [
            {"sentence": s, "pieces": drafting.marked_pieces(s)} for s in found.sentences
        ]
    return TemplateResponse(request, "admin/publishing/digest_draft.html", context)


@require_POST
def digest_draft(request: HttpRequest) -> HttpResponse:
    """A digest draft of the posted body, for the editor to use or discard: nothing is saved.
    Offline at once; by the language model (when configured and chosen) in the background,
    the page polling digest_draft_state."""
    budget = _draft_budget(request)
    text = request.POST.get("text", "")
    if request.POST.get("backend") == "llm" and llm.configured():
        assert isinstance(request.user, User)  # behind admin_view: a signed-in staff account
        asked = drafts.request_draft(
            request.user, DraftRequest.What.DIGEST, request.POST.get("title", ""), text, budget
        )
        return digest_draft_state(request, asked.pk)
    return _draft_panel(request, digest.draft(text, budget), budget=budget)


def digest_draft_state(request: HttpRequest, pk: int) -> HttpResponse:
    """The panel of a draft asked of the language model: its progress, or the draft."""
    asked = drafts.draft_state(get_object_or_404(DraftRequest, pk=pk, requested_by=request.user))
    if asked.state != DraftRequest.State.DONE:
        poll = reverse("admin:publishing_article_digest_draft_state", args=[asked.pk])
        return _draft_panel(request, None, asked=asked, poll_url=poll, budget=asked.budget)
    assert asked.result is not None  # a request is done with its result, in one update
    return _draft_panel(request, drafting.from_json(asked.result), budget=asked.budget)


# The mixin relies on ModelAdmin (self.model, super().get_urls() …); mypy sees it as a
# subclass, while at runtime it stays a plain mixin placed before ModelAdmin.
if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


class MarkdownPreviewMixin(_ModelAdminBase):
    """A live preview under each Markdown field, and a 「公開する」 button next to 「保存」."""

    markdown_fields: tuple[str, ...] = ()
    # The topic whose readers hear of the item when it is published with 「公開時に購読者へ通知
    # する」.
    notify_topic = ""
    change_form_template = "admin/publishing/change_form.html"
    # An address typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    class Media:
        js = [
            "merumaga/post-for-html.js",
            "publishing/markdown-preview.js",
            "publishing/publish-confirm.js",
            "merumaga/jis-check.js",
            "publishing/digest-draft.js",  # articles only: it looks for their digest field
        ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in self.markdown_fields:
            field.widget = UnfoldAdminTextareaWidget(
                attrs={"rows": 16, "data-markdown-preview": "1"}
            )
        return field

    def _preview_url_name(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_preview"

    def _jis_check_url_name(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_jis_check"

    def get_urls(self):
        # Helpers of the editor's page: they read only what is posted, for who may see the kind.
        opts = self.model._meta
        may_view = permission_required(
            f"{opts.app_label}.view_{opts.model_name}", raise_exception=True
        )
        return [
            path(
                "preview/",
                self.admin_site.admin_view(may_view(markdown_preview)),
                name=self._preview_url_name(),
            ),
            path(
                "jis-check/",
                self.admin_site.admin_view(
                    may_view(lambda request: jis_check(request, self.model))
                ),
                name=self._jis_check_url_name(),
            ),
            *super().get_urls(),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        # Publishing with the notice mails the topic's readers: for who may start mailings.
        if self.notify_topic and not request.user.has_perm("mailings.send_mailing"):
            fields.append("notify_subscribers")
        return fields

    def save_model(self, request, obj, form, change):
        services.save_item(obj, form.changed_data if change else ())
        warn_about_jis(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["preview_url"] = reverse(f"admin:{self._preview_url_name()}")
        context["jis_check_url"] = reverse(f"admin:{self._jis_check_url_name()}")
        context["can_publish"] = (
            self.has_add_permission(request)
            if obj is None
            else self.has_change_permission(request, obj)
        )
        context["publish_button"] = PUBLISH_BUTTON
        context["preview_announcement_button"] = PREVIEW_ANNOUNCEMENT_BUTTON
        if (
            self.notify_topic
            and (obj is None or obj.status != Status.PUBLISHED)
            and request.user.has_perm("mailings.send_mailing")
        ):
            # Before anything goes out, the editor sees how many readers it would reach.
            topic = Topic.objects.filter(key=self.notify_topic).first()
            context["notify"] = {
                "topic": topic.display_name if topic else self.notify_topic,
                "count": deliverable_count(self.notify_topic),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def publish(self, request, obj) -> None:
        raise NotImplementedError

    def _after_save(self, request, obj):
        if PUBLISH_BUTTON in request.POST:
            try:
                self.publish(request, obj)
            except services.PublishingError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, _("公開しました。"))

    def _announcement_preview(self, request, obj):
        """Saved: now to the announcement's preview (and test send). The app that mails it makes
        the draft and names the page (a signal: this app does not know the later ones)."""
        if PREVIEW_ANNOUNCEMENT_BUTTON not in request.POST or not self.notify_topic:
            return None
        answers = signals.announcement_preview_requested.send(
            sender=type(obj), instance=obj, by=request.user
        )
        url = next((answer for _receiver, answer in answers if answer), None)
        return HttpResponseRedirect(url) if url else None

    def response_add(self, request, obj, post_url_continue=None):
        self._after_save(request, obj)
        return self._announcement_preview(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        self._after_save(request, obj)
        return self._announcement_preview(request, obj) or super().response_change(request, obj)


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    list_display = ("name", "slug")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Article)
class ArticleAdmin(MarkdownPreviewMixin, ModelAdmin):
    markdown_fields = ("body",)
    notify_topic = "articles"
    list_display = ("title", "status", "published_at", "source_name", "notify_subscribers")
    list_filter = ("status", "tags", "notify_subscribers")
    search_fields = ("title", "digest", "source_name")
    date_hierarchy = "published_at"
    autocomplete_fields = ("tags",)
    readonly_fields = ("status",)
    fieldsets = [
        (None, {"fields": ("title", "slug", "digest", "digest_origin", "body")}),
        (gettext_lazy("出典"), {"fields": ("source_name", "source_detail", "source_url")}),
        (
            gettext_lazy("公開"),
            {
                "fields": (
                    "status",
                    "published_at",
                    "notify_subscribers",
                    "author",
                    "tags",
                    "cover_image",
                )
            },
        ),
    ]
    actions = ["publish_selected", "unpublish_selected"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "digest_origin":
            # Set by 「この下書きを使う」 (digest-draft.js), not typed.
            kwargs["widget"] = forms.HiddenInput
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_urls(self):
        may_write = permission_required("publishing.change_article", raise_exception=True)
        return [
            path(
                "digest-draft/",
                self.admin_site.admin_view(may_write(digest_draft)),
                name="publishing_article_digest_draft",
            ),
            path(  # only its requester may read a draft (a preface's too): no other permission
                "digest-draft/<int:pk>/",
                self.admin_site.admin_view(digest_draft_state),
                name="publishing_article_digest_draft_state",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["digest_draft_url"] = reverse("admin:publishing_article_digest_draft")
        context["digest_llm"] = llm.configured()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def publish(self, request, obj):
        services.publish_article(obj, at=obj.published_at)

    @admin.action(description=gettext_lazy("選択した記事を公開する"), permissions=["change"])
    def publish_selected(self, request, queryset):
        for article in queryset.exclude(status=Status.PUBLISHED):
            try:
                services.publish_article(article, at=article.published_at)
            except services.PublishingError as error:
                messages.error(request, f"{article}: {error}")

    @admin.action(description=gettext_lazy("選択した記事を下書きに戻す"), permissions=["change"])
    def unpublish_selected(self, request, queryset):
        for article in queryset:
            services.unpublish(article)


@admin.register(Report)
class ReportAdmin(MarkdownPreviewMixin, ModelAdmin):
    notify_topic = "reports"
    list_display = ("title", "status", "published_at", "notify_subscribers")
    list_filter = ("status",)
    search_fields = ("title", "summary")
    readonly_fields = ("status",)
    fields = (
        "title",
        "slug",
        "summary",
        "pdf",
        "full_version_url",
        "status",
        "published_at",
        "notify_subscribers",
    )

    def publish(self, request, obj):
        services.publish_report(obj, at=obj.published_at)


class RsvpInline(TabularInline):
    model = Rsvp
    extra = 0
    can_delete = False
    fields = ("name", "organisation", "email", "answer", "requested_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(MarkdownPreviewMixin, ModelAdmin):
    markdown_fields = ("description",)
    notify_topic = "events"
    list_display = ("title", "starts_at", "status", "capacity", "attending", "waitlisted")
    list_filter = ("status",)
    search_fields = ("title", "venue")
    readonly_fields = ("status",)
    fields = (
        "title",
        "slug",
        "description",
        "starts_at",
        "ends_at",
        "venue",
        "online_url",
        "capacity",
        "registration_deadline",
        "reminder_days",
        "status",
        "published_at",
        "notify_subscribers",
    )
    inlines = [RsvpInline]
    actions = ["export_attendees", "cancel_selected"]

    def get_queryset(self, request):
        from django.db.models import Count, Q

        # Counts in the list come from one query, not two per event.
        return (
            super()
            .get_queryset(request)
            .annotate(
                attending_count=Count("rsvps", filter=Q(rsvps__answer=Rsvp.Answer.ATTENDING)),
                waitlisted_count=Count("rsvps", filter=Q(rsvps__answer=Rsvp.Answer.WAITLISTED)),
            )
        )

    @admin.display(description=gettext_lazy("参加"), ordering="attending_count")
    def attending(self, event):
        return event.attending_count

    @admin.display(description=gettext_lazy("キャンセル待ち"), ordering="waitlisted_count")
    def waitlisted(self, event):
        return event.waitlisted_count

    def publish(self, request, obj):
        services.publish_event(obj, at=obj.published_at)

    @admin.action(
        description=gettext_lazy("参加者一覧をCSVで書き出す (1件)"), permissions=["change"]
    )
    def export_attendees(self, request, queryset):
        from merumaga.publishing.event_admin import attendee_csv_response

        if queryset.count() != 1:
            messages.error(request, _("イベントを1件だけ選んでください。"))
            return None
        return attendee_csv_response(queryset.get())

    @admin.action(description=gettext_lazy("選択したイベントを中止する"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        for event in queryset:
            services.cancel_event(event)


@admin.register(ArchivedMailing)
class ArchivedMailingAdmin(ModelAdmin):
    list_display = ("title", "topic_name", "sent_at")
    readonly_fields = ("title", "slug", "topic_name", "html", "sent_at")

    def has_add_permission(self, request):
        return False
