"""A mailing as its readers will get it, before it goes: previews and test sends.

Shared by the admin's preview page and the API. Neither carries a working reader link: the
mail is built for a stand-in reader (id 0) who has the chosen reader's name, language and
charset, so whoever sees a preview or a test mail cannot act for a reader through it.
"""

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from django.utils.translation import gettext as _

from merumaga import audit, mailview, outgoing
from merumaga.mailings import rendering
from merumaga.mailings.audience import deliverable
from merumaga.mailings.contents import weekly_tags
from merumaga.mailings.models import Mailing
from merumaga.publishing.interests import interests_of
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.services import InvalidInput, normalise_email

TEST_SEND_MAX = 20
PREVIEW_READER_CHOICES = 50  # a topic may have thousands of readers: the select lists a few
PREVIEW_ADDRESS = "preview@example.invalid"


@dataclass
class Preview:
    reader: Subscriber
    built: outgoing.Built
    message: EmailMessage

    @property
    def text(self) -> str | None:
        return mailview.text_body(self.message)

    @property
    def html(self) -> str | None:
        return mailview.html_body(self.message)

    @property
    def headers(self) -> list[tuple[str, str]]:
        return mailview.header_items(self.message)

    @property
    def raw_headers(self) -> str:
        block = self.built.data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        return block.decode("utf-8", errors="replace").replace("\r\n", "\n")


def pseudo_reader(email: str) -> Subscriber:
    """An unsaved reader: its links carry id 0, which resolves to no one, so an editor who
    clicks "unsubscribe" in a test mail or a preview unsubscribes no reader."""
    return Subscriber(pk=0, email=email, name="", language="ja", charset=Subscriber.Charset.UTF8)


def preview_readers(mailing: Mailing) -> list[Subscriber]:
    return list(deliverable(mailing)[:PREVIEW_READER_CHOICES])


def chosen_reader(mailing: Mailing, wanted: str | None) -> Subscriber:
    """The reader asked for (if they receive this mailing), else the first, else a stand-in."""
    readers = deliverable(mailing)
    found = (
        readers.filter(pk=int(wanted)).first()
        if wanted and wanted.isascii() and wanted.isdecimal()
        else None
    )
    return found or readers.first() or pseudo_reader(PREVIEW_ADDRESS)


def build_preview(mailing: Mailing, reader: Subscriber, force_jis: bool) -> Preview:
    """The mail as `reader` gets it (their name, language, charset and research fields), with
    links that act on no reader: whoever sees a preview cannot change that reader's settings
    through it."""
    stand_in = pseudo_reader(reader.email or "")
    stand_in.name, stand_in.language = reader.name, reader.language
    stand_in.charset = Subscriber.Charset.ISO2022JP if force_jis else reader.charset
    fields = interests_of([reader.pk], weekly_tags(mailing)).get(reader.pk, frozenset())
    compiled = rendering.compile_mailing(mailing, reader.language, interests=fields)
    built = rendering.build(compiled, stand_in)
    message = message_from_bytes(built.data, policy=policy.default)
    return Preview(reader=reader, built=built, message=message)


@dataclass
class TestSends:
    sent: list[str]
    refused: list[str]  # each with the relay's reason
    relay_error: str = ""  # why the relay took nothing more (unreachable, busy), if it did not


def send_tests(mailing: Mailing, addresses: list[str]) -> TestSends:
    """Sends the test copy to each address, through the one path of every mail; stops at the
    first temporary failure (the relay is down or busy: the next address would fare no better)."""
    compiled = rendering.compile_mailing(mailing, "ja", test=True)
    result = TestSends(sent=[], refused=[])
    for address in addresses:
        try:
            outgoing.send_built(rendering.build(compiled, pseudo_reader(address)))
        except outgoing.NotSent as error:
            if error.temporary:
                result.relay_error = str(error)
                break
            result.refused.append(f"{address} ({error})")
        else:
            result.sent.append(address)
    audit.tell("mailings.test_send", target=mailing.subject, sent=len(result.sent))
    return result


def test_addresses(raw: list[str]) -> list[str]:
    """The addresses a test copy goes to, normalised and without repeats; InvalidInput (one line
    per bad address) when any is wrong, none, or more than TEST_SEND_MAX."""
    if len(raw) > TEST_SEND_MAX:
        raise InvalidInput(_("テスト送信は最大%(max)d件までです。") % {"max": TEST_SEND_MAX})
    addresses, errors = [], []
    for candidate in raw:
        try:
            address = normalise_email(candidate)
        except InvalidInput as error:
            errors.append(f"{candidate}: {error}")
            continue
        if address not in addresses:
            addresses.append(address)
    if errors:
        raise InvalidInput("\n".join(errors))
    if not addresses:
        raise InvalidInput(_("メールアドレスを入力してください。"))
    return addresses
