"""Reading a MIME message for a person: its headers decoded, its text and HTML bodies in any
charset, its attachments listed. Shown by the mail catcher's viewer and the mailing preview.
"""

from dataclasses import dataclass
from email.message import EmailMessage, Message
from urllib.parse import urlsplit

from django.conf import settings

# Charset names that Japanese mailers use but Python's codec registry does not know.
CHARSET_ALIASES = {"windows-31j": "cp932", "x-sjis": "cp932"}


def html_policy(load_images: bool) -> str:
    """The Content-Security-Policy of a mail's HTML shown in the admin (in a sandboxed frame):
    no script, no form, nothing fetched but images, and only the site's own until the viewer
    asks for the others (a remote image would tell its sender that, when and from where the
    mail was opened: the admin's own address)."""
    site = urlsplit(settings.SITE_URL)
    images = "data: https: http:" if load_images else f"data: {site.scheme}://{site.netloc}"
    return f"sandbox; default-src 'none'; img-src {images}; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


def header_items(message: EmailMessage) -> list[tuple[str, str]]:
    """Every header in order, decoded (RFC 2047, raw UTF-8) where it can be parsed."""
    items = []
    for name, raw in message.raw_items():
        try:
            value = str(message.policy.header_fetch_parse(name, raw))
        except Exception:
            # policy.default gives up on some malformed headers; the catcher must still show the
            # mail, so show the header as it came (its stray 8-bit bytes made printable).
            value = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        items.append((name, value))
    return items


def decode_part(part: Message) -> str:
    """A text part's content as str, whatever its transfer encoding and charset; LF line ends."""
    decoded = part.get_payload(decode=True)  # bytes for a leaf part
    payload = decoded if isinstance(decoded, bytes) else b""
    charset = (part.get_content_charset() or "utf-8").lower()
    try:
        # ISO-2022-JP mail often holds characters beyond JIS X 0208 (①, ㈱): replace, don't fail.
        text = payload.decode(CHARSET_ALIASES.get(charset, charset), errors="replace")
    except LookupError:
        # Unknown charset: read it as UTF-8, where anything undecodable shows up as "�".
        text = payload.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def text_body(message: EmailMessage) -> str | None:
    part = message.get_body(preferencelist=("plain",))
    return None if part is None else decode_part(part)


def html_body(message: EmailMessage) -> str | None:
    part = message.get_body(preferencelist=("html",))
    return None if part is None else decode_part(part)


def attachments(message: EmailMessage) -> list[Attachment]:
    """Every leaf part other than the text and HTML bodies shown: attachments, inline images."""
    bodies = [message.get_body(preferencelist=(subtype,)) for subtype in ("plain", "html")]
    found = []
    for part in message.walk():
        if part.is_multipart() or any(part is body for body in bodies):
            continue
        found.append(
            Attachment(
                filename=part.get_filename() or "",
                content_type=part.get_content_type(),
                size=len(part.get_payload(decode=True) or b""),
            )
        )
    return found
