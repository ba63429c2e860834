from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminURLInputWidget

from merumaga.admin_site import RecordAdmin
from merumaga.hooks import services, tasks
from merumaga.hooks.models import EVENTS, TEST_EVENT, Endpoint, WebhookDelivery
from merumaga.shown import minute


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=gettext_lazy("イベント"),
        choices=EVENTS,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=gettext_lazy("何も選ばなければ、すべてのイベントを送ります。"),
    )

    url = forms.URLField(
        label=gettext_lazy("送信先URL"),
        max_length=500,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,  # the theme's input: a plain one shows no box
    )

    class Meta:
        model = Endpoint
        fields = ["url", "description", "events", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        problem = services.address_problem(url)
        if problem:
            raise forms.ValidationError(
                _("この送信先には送れません: %(problem)s") % {"problem": problem}
            )
        return url


@admin.register(Endpoint)
class EndpointAdmin(ModelAdmin):
    form = EndpointForm
    list_display = ("url", "description", "active", "event_names", "last_delivery")
    actions = ["send_test_event"]

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "events", "active"]
        return [*fields, "signing_secret"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return ["signing_secret"] if obj is not None else []

    @admin.display(description=gettext_lazy("署名の鍵"))
    def signing_secret(self, endpoint: Endpoint) -> str:
        return format_html(
            "<code>{}</code><br><span class='help'>{}</span>",
            endpoint.secret,
            _(
                "受信側は X-Merumaga-Timestamp と本文を「.」でつないだものの HMAC-SHA256 を"
                "この鍵で計算し、X-Merumaga-Signature (sha256=…) と比べてください。"
            ),
        )

    @admin.display(description=gettext_lazy("イベント"))
    def event_names(self, endpoint: Endpoint) -> str:
        names = dict(EVENTS)
        return ", ".join(str(names.get(e, e)) for e in endpoint.events) or _("すべて")

    @admin.display(description=gettext_lazy("最後の送信"))
    def last_delivery(self, endpoint: Endpoint) -> str:
        last = endpoint.deliveries.first()
        return f"{minute(last.created_at)} {last.get_status_display()}" if last else "—"

    @admin.action(description=gettext_lazy("テストイベントを送る"), permissions=["change"])
    def send_test_event(self, request, queryset):
        sent = 0
        for endpoint in queryset:
            for delivery in services.emit(TEST_EVENT, {"endpoint": endpoint.pk}, [endpoint]):
                tasks.deliver_webhook(delivery.pk)
                sent += 1
        self.message_user(
            request,
            _("テストイベントを %(count)d 件送りました。結果は「Webhook の送信」で確かめられます。")
            % {"count": sent},
            messages.SUCCESS,
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RecordAdmin, ModelAdmin):
    """Each event sent to each endpoint, its tries and the last answer: read only."""

    list_display = ("when", "event", "endpoint", "status", "attempts", "last_status", "last_error")
    list_filter = ("status", "event", "endpoint")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    @admin.display(description=gettext_lazy("作成日時"), ordering="created_at")
    def when(self, delivery: WebhookDelivery) -> str:
        return minute(delivery.created_at)
