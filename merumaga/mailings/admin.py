"""The editors' tools for mailings: compose, check, preview, test-send, send, pause, cancel.

Every change of state goes through merumaga.mailings.services (which locks the row and records
who did it); the admin only shows the buttons the current state allows and relays the answer.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline

from merumaga import mailview
from merumaga.mailings import previews, services
from merumaga.mailings.audience import deliverable
from merumaga.mailings.checks import content_problems, jis_warnings
from merumaga.mailings.models import Mailing, MailingArticle, StatusChange, WeeklyRun
from merumaga.publishing import drafts, llm
from merumaga.publishing.admin import digest_draft_state
from merumaga.publishing.models import DraftRequest
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.services import InvalidInput
from merumaga.views import jis_check, warn_about_jis

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

Status = Mailing.Status

# The HTML part is shown sandboxed: no scripts, no forms, no same-origin access (as in the
# mail catcher's viewer); only images and inline styles may load.
# Only these are written on save: a full save would put back the status, times and counters
# read before a service (another editor, the sending task) changed them.
PREFACE_BUDGET = 160  # characters: a short greeting to the week's articles
EDITABLE_FIELDS = (
    "subject",
    "preheader",
    "intro",
    "grouping",
    "show_related",
    "attach_pdf",
    "topic",
    "scheduled_at",
)
DISPLAY_FIELDS = (
    "kind",
    "issue_number",
    "topic",
    "subject",
    "preheader",
    "intro",
    "grouping",
    "show_related",
    "attach_pdf",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "recipients",
    "sent",
    "failed",
    "article",
    "report",
    "event",
    "included_articles",
    "status_history",
    "created",
    "updated",
)


@dataclass(frozen=True)
class Button:
    """A state change offered on the change page, shown only where the service allows it."""

    name: str
    label: "StrOrPromise"
    allowed_from: tuple[str, ...]
    done: "StrOrPromise"
    confirm: "StrOrPromise" = ""


BUTTONS = (
    Button(
        "start",
        gettext_lazy("今すぐ配信"),
        services.EDITABLE,
        gettext_lazy("配信を開始しました。"),
        gettext_lazy("%(count)s人の購読者に今すぐ配信します。よろしいですか?"),
    ),
    Button(
        "schedule",
        gettext_lazy("予約する"),
        services.EDITABLE,
        gettext_lazy("配信を予約しました。"),
    ),
    Button(
        "pause",
        pgettext_lazy("button", "一時停止"),
        (Status.SENDING,),
        gettext_lazy("配信を一時停止しました。"),
    ),
    Button("resume", gettext_lazy("再開"), (Status.PAUSED,), gettext_lazy("配信を再開しました。")),
    Button(
        "cancel",
        pgettext_lazy("button", "中止"),
        (*services.EDITABLE, Status.SENDING, Status.PAUSED),
        gettext_lazy("配信を中止しました。"),
        gettext_lazy("この配信を中止します。中止した配信は再開できません。よろしいですか?"),
    ),
)


def is_editable(mailing: Mailing | None) -> bool:
    return mailing is None or mailing.status in services.EDITABLE


class MailingForm(forms.ModelForm):
    class Meta:
        model = Mailing
        fields = EDITABLE_FIELDS
        help_texts = {
            "scheduled_at": gettext_lazy(
                "下書きでは、ここに入れただけでは予約されません。「予約する」で確定します。"
            ),
        }

    def clean_scheduled_at(self):
        at = self.cleaned_data.get("scheduled_at")
        # start_due() picks scheduled mailings by this time: a blank one would never go, a past
        # one would go within a minute, without the checks of services.schedule().
        if self.instance.status == Status.SCHEDULED and (at is None or at <= timezone.now()):
            raise forms.ValidationError(
                _(
                    "予約中の配信には未来の日時が必要です。予約をやめるには「中止」を使ってください。"
                )
            )
        return at


class ScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        label=gettext_lazy("配信予定日時"),
        error_messages={
            "required": gettext_lazy("配信予定日時を入力してください。"),
            "invalid": gettext_lazy("配信予定日時の形式が正しくありません。"),
        },
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


_ADDRESS_SEPARATORS = re.compile(r"[\s,、，;]+")


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        label=gettext_lazy("送信先 (編集部のアドレス)"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=gettext_lazy("1行に1件、またはカンマ区切りで、最大20件。"),
    )

    def clean_addresses(self) -> list[str]:
        raw = [part for part in _ADDRESS_SEPARATORS.split(self.cleaned_data["addresses"]) if part]
        try:
            return previews.test_addresses(raw)
        except InvalidInput as error:
            raise forms.ValidationError(str(error).split("\n")) from None


# Read-only displays.


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i") if moment else "—"


def _status_label(value: str) -> str:
    return str(Status(value).label) if value in Status.values else value or "—"


class WeeklyArticleInline(TabularInline):
    """The articles of a weekly report waiting to be sent, in the order they will appear: the
    editor changes the numbers to reorder them (new articles come in at the top, newest first)."""

    model = MailingArticle
    extra = 0
    can_delete = False
    fields = ("position", "article_title", "published")
    readonly_fields = ("article_title", "published")
    ordering = ("position", "id")
    verbose_name = gettext_lazy("記事")
    verbose_name_plural = gettext_lazy("記事の並び順 (小さい番号から順に載ります)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and is_editable(obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("article")

    @admin.display(description=gettext_lazy("タイトル"))
    def article_title(self, row: MailingArticle) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:publishing_article_change", args=[row.article_id]),
            row.article.title,
        )

    @admin.display(description=gettext_lazy("公開日時"))
    def published(self, row: MailingArticle) -> str:
        return _when(row.article.published_at)


@admin.register(Mailing)
class MailingAdmin(ModelAdmin):
    form = MailingForm
    list_before_template = "admin/mailings/mailing/list_tools.html"
    change_form_outer_before_template = "admin/mailings/mailing/tools.html"
    # The subject is what an editor looks for: the widest column; the rest is short.
    list_display = ("subject", "kind_and_topic", "status", "when", "recipients", "sent", "failed")
    list_filter = ("kind", "status", "topic")
    list_select_related = ("topic",)
    search_fields = ("subject",)

    class Media:
        js = [
            "merumaga/post-for-html.js",
            "merumaga/jis-check.js",
            "merumaga/confirm.js",
            "publishing/digest-draft.js",  # 「前書きの下書きを作成」, with a language model
        ]

    @admin.display(description=gettext_lazy("種類 / 配信先"), ordering="kind")
    def kind_and_topic(self, mailing: Mailing) -> str:
        return f"{mailing.get_kind_display()} / {mailing.topic.name}"

    @admin.display(description=gettext_lazy("配信日時 (予定)"), ordering="scheduled_at")
    def when(self, mailing: Mailing) -> str:
        """When it went out, or is to go out; Japan time."""
        return _when(mailing.started_at or mailing.scheduled_at)

    # Fields.

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            description = _("ここで作成する配信は「お知らせ」です。")
            fields = ("subject", "topic", "preheader", "intro", "scheduled_at")
            return [(None, {"fields": fields, "description": description})]
        content = ["kind", "topic", "subject", "preheader", "intro"]
        if obj.kind == Mailing.Kind.REPORT:
            content.append("attach_pdf")
        if obj.kind == Mailing.Kind.WEEKLY:  # the magazine: its number, layout, related articles
            content[1:1] = ["issue_number"]
            content += ["grouping", "show_related"]
        about = [name for name in ("article", "report", "event") if getattr(obj, name + "_id")]
        if obj.kind == Mailing.Kind.WEEKLY and not is_editable(obj):
            about.append("included_articles")  # while editable, the inline lists them
        fieldsets = [(None, {"fields": content})]
        if about:
            fieldsets.append((_("お知らせする内容"), {"fields": about}))
        delivery = ("status", "scheduled_at", "started_at", "finished_at")
        fieldsets.append((_("配信"), {"fields": (*delivery, "recipients", "sent", "failed")}))
        history = ("status_history", "created", "updated")
        fieldsets.append((_("履歴"), {"fields": history}))
        return fieldsets

    def get_inlines(self, request, obj):
        if obj is not None and obj.kind == Mailing.Kind.WEEKLY and is_editable(obj):
            return [WeeklyArticleInline]
        return []

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if not is_editable(obj):
            return DISPLAY_FIELDS
        editable = set(EDITABLE_FIELDS)
        if obj.kind != Mailing.Kind.CUSTOM:
            editable.discard("topic")  # the kind decides the audience of composed mailings
        return tuple(name for name in DISPLAY_FIELDS if name not in editable)

    # The model's timestamps have no Japanese names: these give them one.

    @admin.display(description=gettext_lazy("作成日時"), ordering="created_at")
    def created(self, mailing: Mailing) -> str:
        return _when(mailing.created_at)

    @admin.display(description=gettext_lazy("更新日時"), ordering="updated_at")
    def updated(self, mailing: Mailing) -> str:
        return _when(mailing.updated_at)

    @admin.display(description=gettext_lazy("記事"))
    def included_articles(self, mailing: Mailing) -> str:
        articles = mailing.articles.order_by("mailingarticle__position")
        if not articles:
            return "—"
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> ({})</li>',
            (
                (
                    reverse("admin:publishing_article_change", args=[a.pk]),
                    a.title,
                    _when(a.published_at),
                )
                for a in articles
            ),
        )
        return format_html("<ol>{}</ol>", rows)

    @admin.display(description=gettext_lazy("状態の履歴"))
    def status_history(self, mailing: Mailing) -> str:
        changes = StatusChange.objects.filter(mailing=mailing).select_related("by")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _when(change.at),
                    _status_label(change.from_status),
                    _status_label(change.to_status),
                    change.by.get_username() if change.by else _("(自動)"),
                    change.note,
                )
                for change in changes
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("日時"),
            _("変更"),
            _("操作した人"),
            _("メモ"),
        )
        return format_html(
            '<div class="mm mm-scroll"><table><thead>{}</thead><tbody>{}</tbody></table></div>',
            head,
            rows,
        )

    # Saving.

    def save_model(self, request, obj, form, change):
        if not change:
            services.compose_custom(obj, by=request.user)
        elif form.changed_data:
            fields = [*form.changed_data, "updated_at"]
            if {"subject", "preheader"} & set(form.changed_data):
                obj.wording_edited = True
                fields.append("wording_edited")
            obj.save(update_fields=fields)
        warn_about_jis(request, obj)

    def has_delete_permission(self, request, obj=None):
        # What was sent (or is being sent) keeps its record: only drafts may be deleted.
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.status == Status.DRAFT
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete sent mailings with their records
        return actions

    # Pages.

    def get_urls(self):
        def url(route: str, view, name: str, permission: str, **kwargs):
            # Staff only, never cached, and the page's own permission (a role may lack it).
            checked = permission_required(f"mailings.{permission}", raise_exception=True)(view)
            wrapped = self.admin_site.admin_view(checked)
            return path(route, wrapped, kwargs, name=f"mailings_mailing_{name}")

        return [
            url("compose-weekly/", self.compose_weekly_view, "compose_weekly", "add_mailing"),
            url(
                "jis-check/",
                lambda request: jis_check(request, Mailing),
                "jis_check",
                "view_mailing",
            ),
            url("<path:object_id>/preview/", self.preview_view, "preview", "view_mailing"),
            url(
                "<path:object_id>/preface-draft/",
                self.preface_draft_view,
                "preface_draft",
                "change_mailing",
            ),
            url(
                "<path:object_id>/preview/html/",
                self.preview_html_view,
                "preview_html",
                "view_mailing",
            ),
            url(
                "<path:object_id>/approve/",
                self.approve_view,
                "approve",
                "approve_mailing",
            ),
            url(
                "<path:object_id>/test-send/",
                self.test_send_view,
                "test_send",
                "test_send_mailing",
            ),
            *(
                url(
                    f"<path:object_id>/{b.name}/",
                    self.transition_view,
                    b.name,
                    "send_mailing",
                    button=b,
                )
                for b in BUTTONS
            ),
            # Last: its "<path:object_id>/" would swallow the routes above.
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def preface_draft_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A preface for a waiting weekly report, drafted by the language model from its
        articles' titles and digests and checked against them (publishing.drafting)."""
        mailing = self.get_object(request, object_id)
        if mailing is None or mailing.kind != Mailing.Kind.WEEKLY or not llm.configured():
            raise Http404
        assert isinstance(request.user, User)  # behind admin_view: a signed-in staff account
        articles = mailing.articles.order_by("mailingarticle__position")
        text = "\n\n".join(f"{article.title}\n{article.digest}" for article in articles)
        asked = drafts.request_draft(
            request.user, DraftRequest.What.PREFACE, mailing.subject, text, PREFACE_BUDGET
        )
        return digest_draft_state(request, asked.pk)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "latest_weekly_run": WeeklyRun.objects.select_related("mailing").first(),
            "compose_weekly_url": reverse("admin:mailings_mailing_compose_weekly"),
        }
        return super().changelist_view(request, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A new mailing is checked as it is written too (without the URL, the check would post
        # to the page itself and show a whole page inside the form).
        context["jis_check_url"] = reverse("admin:mailings_mailing_jis_check")
        if obj is not None:
            context.update(self._tools_context(request, obj))
        weekly = obj is not None and obj.kind == Mailing.Kind.WEEKLY and is_editable(obj)
        if weekly and llm.configured():
            context["preface_draft_url"] = reverse(
                "admin:mailings_mailing_preface_draft", args=[obj.pk]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tools_context(self, request, mailing: Mailing) -> dict:
        editable = is_editable(mailing)
        # The readers it will go to: opted-out and suppressed readers are not counted.
        count = deliverable(mailing).count()
        context = {
            "buttons": [
                (
                    b,
                    reverse(f"admin:mailings_mailing_{b.name}", args=[mailing.pk]),
                    str(b.confirm) % {"count": f"{count:,}"},
                )
                for b in BUTTONS
                if mailing.status in b.allowed_from
                and request.user.has_perm("mailings.send_mailing")
            ],
            "recipient_count": count,
            "approval": self._approval(request, mailing),
            "preview_url": reverse("admin:mailings_mailing_preview", args=[mailing.pk]),
            "content_problems": content_problems(mailing) if editable else [],
            "pause_reason": self._pause_reason(mailing),
            **self._jis_context(mailing),
        }
        if not editable:  # everything is read-only: a "save" button would only confuse
            context.update(
                show_save=False, show_save_and_continue=False, show_save_and_add_another=False
            )
        return context

    def _mailing(self, request, object_id: str) -> Mailing:
        """The mailing a page is about, for an account that may see it (each page's URL checks
        the permission of what it does: sending, test sending)."""
        mailing = self.get_object(request, unquote(object_id))
        if mailing is None:
            raise Http404(_("配信が見つかりません。"))
        if not self.has_view_permission(request, mailing):
            raise PermissionDenied
        return mailing

    def _change_url(self, mailing: Mailing) -> str:
        return reverse("admin:mailings_mailing_change", args=[mailing.pk])

    # Actions.

    @staticmethod
    def _apply(request: HttpRequest, mailing: Mailing, button: Button) -> None:
        by = request.user
        if not by.is_authenticated:  # admin_view lets only a logged-in staff user this far
            raise PermissionDenied
        if button.name == "schedule":
            form = ScheduleForm(request.POST)
            if not form.is_valid():
                # Iterating an ErrorList gives each message as str; the stubs widen it.
                raise services.MailingError(
                    " ".join(str(error) for error in form.errors["scheduled_at"])
                )
            services.schedule(mailing, form.cleaned_data["scheduled_at"], by=by)
            return
        run = {
            "start": services.start,
            "pause": services.pause,
            "resume": services.resume,
            "cancel": services.cancel,
        }[button.name]
        run(mailing, by=by)

    @method_decorator(require_POST)
    def transition_view(self, request: HttpRequest, object_id: str, button: Button):
        mailing = self._mailing(request, object_id)
        try:
            self._apply(request, mailing, button)
        except services.MailingError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, button.done)
        return HttpResponseRedirect(self._change_url(mailing))

    @method_decorator(require_POST)
    def approve_view(self, request: HttpRequest, object_id: str):
        mailing = self._mailing(request, object_id)
        by = request.user
        if not by.is_authenticated:  # admin_view lets only a logged-in staff user this far
            raise PermissionDenied
        try:
            services.approve(mailing, by=by)
        except services.MailingError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("承認しました。別のアカウントが開始・予約できます。"))
        return HttpResponseRedirect(self._change_url(mailing))

    @method_decorator(require_POST)
    def compose_weekly_view(self, request: HttpRequest):
        if not self.has_add_permission(request) or not request.user.is_authenticated:
            raise PermissionDenied
        composed = services.compose_weekly(by=request.user)
        run = WeeklyRun.objects.first()  # the note of this run: what was done, in words
        if run is None:  # compose_weekly records every run
            raise RuntimeError("compose_weekly left no WeeklyRun")
        if composed.mailing is None:
            messages.warning(request, run.note)
            return HttpResponseRedirect(reverse("admin:mailings_mailing_changelist"))
        if composed.created:
            messages.success(request, _("週報を作成しました。内容を確認してから配信してください。"))
        elif composed.added or composed.removed:
            messages.success(request, run.note)
        else:
            messages.info(request, run.note)
        return HttpResponseRedirect(self._change_url(composed.mailing))

    def preview_view(self, request: HttpRequest, object_id: str):
        mailing = self._mailing(request, object_id)
        return self._render_preview(request, mailing, TestSendForm())

    def _render_preview(self, request: HttpRequest, mailing: Mailing, form: TestSendForm):
        choices = previews.preview_readers(mailing)
        force_jis = request.GET.get("charset") == Subscriber.Charset.ISO2022JP
        reader = previews.chosen_reader(mailing, request.GET.get("subscriber"))
        preview = previews.build_preview(mailing, reader, force_jis)
        if reader.pk and reader not in choices:
            choices.append(reader)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": mailing,
            "title": _("プレビュー: %(subject)s") % {"subject": mailing.subject},
            "preview": preview,
            "choices": choices,
            "force_jis": force_jis,
            "html_url": self._preview_html_url(request, mailing),
            **self._images_switch(request),
            "preview_url": reverse("admin:mailings_mailing_preview", args=[mailing.pk]),
            "test_send_url": reverse("admin:mailings_mailing_test_send", args=[mailing.pk]),
            "change_url": self._change_url(mailing),
            "form": form,
            "recipient_count": deliverable(mailing).count(),
            **self._announced(mailing),
            **self._jis_context(mailing),
        }
        return TemplateResponse(request, "admin/mailings/mailing/preview.html", context)

    @staticmethod
    def _pause_reason(mailing: Mailing) -> str:
        """Why a paused mailing stopped (an editor's note, too many errors, a failure)."""
        if mailing.status != Status.PAUSED:
            return ""
        change = mailing.status_changes.filter(to_status=Status.PAUSED).last()
        return change.note if change else ""

    @staticmethod
    def _jis_context(mailing: Mailing) -> dict:
        """What readers of ISO-2022-JP would not get as written, and how many they are."""
        problems = jis_warnings(mailing)
        if not problems:
            return {"jis_problems": []}
        readers = deliverable(mailing).filter(charset=Subscriber.Charset.ISO2022JP).count()
        return {"jis_problems": problems, "jis_readers": readers}

    @staticmethod
    def _announced(mailing: Mailing) -> dict:
        """For the draft announcing an item not yet published: the item, to go back to it."""
        if mailing.status != Status.DRAFT:
            return {}
        for name in ("article", "report", "event"):
            item = getattr(mailing, name)
            if item is not None and item.status != "published":
                url = reverse(f"admin:publishing_{name}_change", args=[item.pk])
                return {"announced": item, "announced_url": url}
        return {}

    @staticmethod
    def _approval(request: HttpRequest, mailing: Mailing) -> dict | None:
        """The two-person rule's state on the mailing's page, when it applies."""
        if not is_editable(mailing) or not services.needs_approval(mailing):
            return None
        valid = bool(mailing.approved_by_id) and (
            mailing.approved_content == services.content_fingerprint(mailing)
        )
        return {
            "valid": valid,
            "by": mailing.approved_by if valid else None,
            "at": mailing.approved_at if valid else None,
            "edited": bool(mailing.approved_by_id) and not valid,
            "limit": settings.MAILING_APPROVAL_ABOVE,
            "url": reverse("admin:mailings_mailing_approve", args=[mailing.pk]),
            "may_approve": request.user.has_perm("mailings.approve_mailing")
            and (not valid or mailing.approved_by_id != request.user.pk),
        }

    @staticmethod
    def _images_switch(request: HttpRequest) -> dict:
        """Remote images only when asked: the same page with images=1, or without it."""
        query = request.GET.copy()
        load = query.pop("images", None) == ["1"]
        if not load:
            query["images"] = "1"
        return {"load_images": load, "images_url": f"?{query.urlencode()}#html"}

    @staticmethod
    def _preview_html_url(request: HttpRequest, mailing: Mailing) -> str:
        url = reverse("admin:mailings_mailing_preview_html", args=[mailing.pk])
        query = request.GET.urlencode()  # the same reader and charset as the page around it
        return f"{url}?{query}" if query else url

    @method_decorator(xframe_options_sameorigin)
    def preview_html_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        mailing = self._mailing(request, object_id)
        reader = previews.chosen_reader(mailing, request.GET.get("subscriber"))
        force_jis = request.GET.get("charset") == Subscriber.Charset.ISO2022JP
        page = previews.build_preview(mailing, reader, force_jis).html or ""
        response = HttpResponse(page, content_type="text/html; charset=utf-8")
        response["Content-Security-Policy"] = mailview.html_policy(request.GET.get("images") == "1")
        return response

    @method_decorator(require_POST)
    def test_send_view(self, request: HttpRequest, object_id: str):
        mailing = self._mailing(request, object_id)
        form = TestSendForm(request.POST)
        if not form.is_valid():
            return self._render_preview(request, mailing, form)
        result = previews.send_tests(mailing, form.cleaned_data["addresses"])
        if result.sent:
            messages.success(
                request,
                _("テストメールを送信しました: %(addresses)s")
                % {"addresses": ", ".join(result.sent)},
            )
        if result.refused:
            messages.error(
                request,
                _("次のアドレスには送信できませんでした: %(addresses)s")
                % {"addresses": ", ".join(result.refused)},
            )
        if result.relay_error:
            messages.error(
                request,
                _("メールサーバーに送信できませんでした: %(error)s")
                % {"error": result.relay_error},
            )
            return self._render_preview(request, mailing, form)
        return HttpResponseRedirect(reverse("admin:mailings_mailing_preview", args=[mailing.pk]))
