import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django import forms
from django.core import signing
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from merumaga.subscribers import services, throttle
from merumaga.subscribers.models import Subscriber, Topic

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_STAMP_SALT = "merumaga.subscribers.signup-stamp"


class TopicChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, topic: Topic) -> str:
        return topic.display_name


def active_topics():
    return Topic.objects.filter(is_active=True)


class ReaderForm(forms.Form):
    """The name a reader goes by, checked as every form of ours checks it."""

    name = forms.CharField(
        label=_("お名前 (任意)"),
        required=False,
        max_length=services.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )

    def clean_name(self) -> str:
        try:
            return services.clean_text(
                self.cleaned_data["name"], services.NAME_MAX_LENGTH, _("お名前")
            )
        except services.InvalidInput as error:
            raise forms.ValidationError(str(error)) from None


class AddressForm(forms.Form):
    """An address typed by a person: checked and normalised by services, so that the message
    they see is the one every other form shows."""

    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
        error_messages={"required": _("メールアドレスを入力してください。")},
    )

    def clean_email(self) -> str:
        try:
            return services.normalise_email(self.cleaned_data["email"])
        except services.InvalidInput as error:
            raise forms.ValidationError(str(error)) from None


class ConfirmForm(ReaderForm):
    """The request as its owner confirms it: they may change the mailings and the name, which
    whoever filled in the sign-up form typed."""

    topics = TopicChoiceField(
        label=_("受け取るメールマガジン"),
        queryset=active_topics(),
        to_field_name="key",
        error_messages={"required": _("受け取るメールマガジンを一つ以上選んでください。")},
    )
    field_order = ["topics", "name"]


class SubscribeForm(AddressForm, ConfirmForm):
    # Bots fill every field; people never see this one (hidden by the style sheet).
    website = forms.CharField(
        label=_("空欄のままにしてください"),
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    # A signed, one-use stamp of the page that was shown: a post must come from a page we served.
    stamp = forms.CharField(widget=forms.HiddenInput, required=False)
    field_order = ["email", "name", "topics", "website", "stamp"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["topics"].initial = [t.key for t in self.fields["topics"].queryset]
            self.fields["stamp"].initial = new_stamp()

    def needs_another_press(self) -> "StrOrPromise | None":
        """Why this post cannot be taken as it is, as a next step for a person; None if it can.

        Never a silent discard: a person whose browser filled the hidden field, whose page was
        open for over a day, or who pressed the button twice gets the form back, filled in, with
        a fresh stamp; pressing again signs them up. A bot gets the same page, and its sign-ups
        still need the owner's confirmation by mail and stay under the rate limits.
        """
        if self.cleaned_data.get("website"):
            return _("確認のため、もう一度「同意して登録する」を押してください。")
        issued = read_stamp(self.cleaned_data.get("stamp") or "")
        if issued is None:
            return _(
                "ページを開いてから時間がたったため、送信できませんでした。"
                "内容を確認して、もう一度「同意して登録する」を押してください。"
            )
        nonce, issued_at = issued
        if not throttle.first_use(f"signup-stamp:{nonce}", issued_at):
            return _(
                "このフォームはすでに送信されています。"
                "もう一度登録する場合は「同意して登録する」を押してください。"
            )
        return None

    def shown_again(self) -> "SubscribeForm":
        """The same answers on a fresh page: a new stamp, the hidden field emptied."""
        # Bound to request.POST (a QueryDict, whose copy is mutable) or, in tests, a plain dict.
        data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
        data["stamp"] = new_stamp()
        data["website"] = ""
        again = SubscribeForm(data)
        again.is_valid()
        return again


def new_stamp() -> str:
    return signing.dumps([secrets.token_urlsafe(12), int(time.time())], salt=_STAMP_SALT)


def read_stamp(stamp: str) -> tuple[str, datetime] | None:
    """The stamp's nonce and when it was issued; None when forged or older than a day."""
    try:
        nonce, issued = signing.loads(stamp, salt=_STAMP_SALT, max_age=throttle.ONE_USE_WINDOW)
        return str(nonce), datetime.fromtimestamp(int(issued), UTC)
    except (signing.BadSignature, ValueError, TypeError):
        return None


class PreferencesForm(ReaderForm):
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
