import time

from django import forms
from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _

from merumaga.subscribers import services
from merumaga.subscribers.models import Subscriber, Topic

_FILL_TIME_SALT = "merumaga.subscribers.form-rendered-at"


class TopicChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, topic: Topic) -> str:
        return topic.display_name


def active_topics():
    return Topic.objects.filter(is_active=True)


class SubscribeForm(forms.Form):
    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    name = forms.CharField(
        label=_("お名前 (任意)"),
        required=False,
        max_length=services.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    topics = TopicChoiceField(
        label=_("受け取るメールマガジン"),
        queryset=active_topics(),
        to_field_name="key",
        error_messages={"required": _("受け取るメールマガジンを一つ以上選んでください。")},
    )
    # Bots fill every field and post at once; people leave this one empty and take a moment.
    website = forms.CharField(
        label=_("空欄のままにしてください"),
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    rendered_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["topics"].initial = [t.key for t in self.fields["topics"].queryset]
            self.fields["rendered_at"].initial = signing.dumps(time.time(), salt=_FILL_TIME_SALT)

    def clean_email(self) -> str:
        try:
            return services.normalise_email(self.cleaned_data["email"])
        except services.InvalidInput as error:
            raise forms.ValidationError(str(error)) from None

    def clean_name(self) -> str:
        try:
            return services.clean_text(
                self.cleaned_data["name"], services.NAME_MAX_LENGTH, _("お名前")
            )
        except services.InvalidInput as error:
            raise forms.ValidationError(str(error)) from None

    def looks_automated(self) -> bool:
        """Honeypot filled, or posted faster than a person can type, or no render stamp."""
        if self.cleaned_data.get("website"):
            return True
        try:
            rendered = signing.loads(
                self.cleaned_data.get("rendered_at") or "", salt=_FILL_TIME_SALT, max_age=86400
            )
        except signing.BadSignature:
            return True
        return time.time() - float(rendered) < settings.SIGNUP_MIN_SECONDS


class PreferencesForm(forms.Form):
    topics = TopicChoiceField(
        label=_("受け取るメールマガジン"),
        queryset=active_topics(),
        to_field_name="key",
        required=False,
    )
    language = forms.ChoiceField(label=_("言語"), choices=Subscriber.Language.choices)
    charset = forms.ChoiceField(
        label=_("文字コード"),
        choices=Subscriber.Charset.choices,
        help_text=_("携帯電話のメールで文字化けする場合は ISO-2022-JP を選んでください。"),
    )
