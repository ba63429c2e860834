"""Read one inbound message and say what it is; change nothing.

`classify(raw, envelope_recipients)` is a pure function: it reads bytes, may read
django.conf.settings (through the token HMAC), never touches the database and never raises. The
caller decides what to do with the `Verdict`.

Order of reading; the first step that decides ends the reading:

1. The address the mail was sent to: `envelope_recipients` first, then the headers X-Original-To,
   Delivered-To, Envelope-To, X-Envelope-To and To, the first of our addresses found wins.
   `unsubscribe+TOKEN@…` (the List-Unsubscribe mailto) with a valid token is an unsubscribe
   ("mailto:unsubscribe"); with a forged or malformed token it is quarantined
   ("mailto:forged-token"). `bounce+TOKEN@…` (VERP) with a valid token names the mailing and the
   subscriber, and reading goes on; a forged one is quarantined ("verp:forged-token") so that
   nothing is acted on. Local parts are matched case-insensitively on any domain: the HMAC is the
   authentication, not the domain.
2. RFC 3464 delivery status notifications: a message/delivery-status or
   message/global-delivery-status part. Each per-recipient block gives a recipient, by its
   Original-Recipient (the address we sent to) or else its Final-Recipient (which may be an alias
   or a forwarding target), and its reason from the Action, Status and Diagnostic-Code (words in
   the Status field count as a diagnostic); for a single recipient whose block says nothing
   recognisable, from the human-readable part (Japanese carriers put the reason there only).
3. ARF complaints (RFC 5965): a message/feedback-report part is a complaint ("arf:<type>"),
   reason "feedback". This comes right after the DSN and before flufl.bounce because both are
   unambiguous content types, while flufl.bounce's heuristics could read the quoted original of
   a complaint as a bounce. Recipients come from Original-Rcpt-To and Removal-Recipient. Large
   providers redact the recipient, so our own tokens are recovered from the Original-Mail-From
   field and the embedded original's Return-Path and List-Unsubscribe.
4. flufl.bounce's detectors, for bounces that are not RFC 3464 ("flufl.bounce"): they find the
   recipients; each one's reason is read from what the text says about it.
4b. A bounce in words only that flufl.bounce does not know ("text"): from a MAILER-DAEMON or
   postmaster, or with a bounce's subject; recipients are the addresses its text names before
   the quoted original. A text that says delivery goes on being tried is a delay notice.
5. With no VERP token from step 1, a bounce verdict also takes the ids from a valid token in the
   bounced original (its headers, or quoted headers in a plain-text bounce); the rule then ends
   in "+embedded-token". A token failing the HMAC is ignored, never trusted.
6. Auto-replies (RFC 3834 and common practice), by header, then by subject ("auto-reply:…"),
   reason "vacation". They come after the bounce steps because DSNs often carry Auto-Submitted.
7. Anything else is "unrecognised" ("no-rule-matched").

Each recipient's reason (reasons.py) gives its kind, which says what the platform does: "hard"
(the reader is gone: suppressed), "soft" (temporarily unable: scored), "sender" (the problem is
ours: counted against the receiving domain, never the reader), "notice" (delivered or delayed:
recorded only). A verdict's kind is its weightiest recipient's, in that order.

An exception in any step makes the verdict "quarantined" with the rule "error:<step>:<class>",
for a person to look at. Attachments are never decoded and bounced originals are read for their
headers only, so a bounced 20 MB attachment costs parsing time and nothing more.
"""

import base64
import binascii
import codecs
import email
import quopri
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

import flufl.bounce

from merumaga import reasons
from merumaga.subscribers import tokens

KINDS = (
    "hard",
    "soft",
    "sender",
    "notice",
    "complaint",
    "auto_reply",
    "unsubscribe",
    "subscribe",
    "unrecognised",
    "quarantined",
)
# What the platform does, by what kind a verdict is: "hard" suppresses the reader, "soft" scores
# them, "sender" (the problem is ours: a block, a filter, SPF) never counts against them,
# "notice" (delivered, delayed) is recorded and nothing more.
_KIND_OF_GROUP = {
    reasons.GONE: "hard",
    reasons.TEMPORARY: "soft",
    reasons.OURS: "sender",
    reasons.NOTICE: "notice",
    reasons.FEEDBACK: "complaint",
}
_KIND_ORDER = ("hard", "soft", "sender", "notice")

VERP_PURPOSE = "bounce"
SUBSCRIBE_PURPOSE = "subscribe"
_TOPIC_KEY = re.compile(r"[a-z0-9_-]{1,40}")
MAILTO_PURPOSE = tokens.UNSUBSCRIBE

AUTO_REPLY_SUBJECTS = (
    "out of office",
    "automatic reply",
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "vacation",
    "自動返信",
    "自動応答",
    "不在通知",
    "不在",
    "休暇",
    "abwesenheit",
)
# Who sends bounces, by the local part of From.
BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem)|"
    r"returned mail|mail delivery (?:failed|failure|subsystem)|failure notice|"
    r"non-?deliver|could not be delivered|message not delivered|delivery has failed|"
    r"配信(?:エラー|不能|できません|失敗)|不達|宛先不明|返送|送信(?:エラー|失敗)|エラーメール",
    re.I,
)
_TEXT_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Where a text bounce starts quoting the original: the words MTAs use, or its first headers.
_QUOTED_ORIGINAL = re.compile(
    r"^(?:-+ ?(?:original message|this is a copy|below this line|message headers|"
    r"returned message|undelivered message|the header of the original).*|"
    r"(?:return-path|received|message-id|dkim-signature|list-unsubscribe): .*)$",
    re.I | re.M,
)
_QUOTED_TO = re.compile(r"^to:[ \t]*(.+)$", re.I | re.M)
ADDRESSED_TO_HEADERS = ("x-original-to", "delivered-to", "envelope-to", "x-envelope-to", "to")
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
EMBEDDED_TYPES = (
    "message/rfc822",
    "message/global",
    "message/global-headers",
    "text/rfc822-headers",
    "text/global-headers",
)

SUBJECT_MAX = 200
MESSAGE_ID_MAX = 200
DIAGNOSTIC_MAX = 300
# Bounce texts are short; a bigger text part is somebody's attachment and its head is enough.
TEXT_LIMIT = 512 * 1024
# A report has a handful of parts; thousands mean a crafted message, not a bounce.
PARTS_LIMIT = 500
TOKEN_MAX = 100

# Decoders that read what Japanese servers actually send under these labels: Windows code page
# 932 is the Shift_JIS everyone writes, and the ISO-2022-JP extension adds half-width katakana.
_CODEC_ALIASES = {
    "iso-2022-jp": "iso2022_jp_ext",
    "iso2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext",
    "iso-2022-jp-ext": "iso2022_jp_ext",
    "iso-2022-jp-2": "iso2022_jp_2",
    "iso-2022-jp-3": "iso2022_jp_3",
    "iso-2022-jp-2004": "iso2022_jp_2004",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "s-jis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
    "x-ms-cp932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
}
# Labels that promise nothing about 8-bit bytes: sniff instead.
_UNLABELLED = {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"}
_ISO2022_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(I", b"\x1b(J", b"\x1b$(D")

_TOKEN_ADDRESS = re.compile(r"(?<![\w.+-])(bounce|unsubscribe)\+([0-9a-z-]{1,100})@", re.I)
_DIAGNOSTIC_TYPE = re.compile(r"^[A-Za-z][\w-]*\s*;\s*")
_XTEXT_UNICODE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_REDACTED = re.compile(r"^(?:\[?redacted\]?|x+|\*+|-+)$", re.I)
_SUBJECT_LEAD = " \t\u3000[]【】()（）<>＜＞「」『』〔〕"


@dataclass(frozen=True)
class Recipient:
    address: str
    kind: str
    status: str = ""
    diagnostic: str = ""
    reason: str = ""


def kind_of(reason: str) -> str:
    """What the platform does for a recipient with this reason. A suspended mailbox is scored
    at first: the services suppress it once it has stayed suspended past a grace period."""
    if reason == "suspended":
        return "soft"
    if reason == "vacation":
        return "auto_reply"
    return _KIND_OF_GROUP[reasons.group(reason)]


def read_recipient(
    address: str,
    *,
    status: str = "",
    diagnostic: str = "",
    action: str = "",
    reply: str = "",
    stage: str = "",
) -> Recipient:
    """One recipient as the reasons module reads it; the status filled in from the reason when
    the message gave none."""
    reason = reasons.reason(
        status=status,
        diagnostic=diagnostic,
        action=action,
        reply=reply,
        address=address,
        stage=stage,
    )
    status = reasons.more_specific(status, reasons.status_in(diagnostic))
    status = status or reasons.default_status(reason)
    return Recipient(address, kind_of(reason), status, _clip(diagnostic, DIAGNOSTIC_MAX), reason)


@dataclass(frozen=True)
class Verdict:
    kind: str
    rule: str
    recipients: tuple[Recipient, ...] = ()
    mailing_id: int | None = None
    subscriber_id: int | None = None
    topic_id: int | None = None
    subject: str = ""
    message_id: str = ""
    # For a verdict without recipients (an auto-reply, a complaint naming nobody).
    general_reason: str = ""
    # A sign-up by empty mail: the address that asked, and the topic its address named ("":
    # every topic open to sign-ups).
    sender: str = ""
    topic_key: str = ""

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.address for r in self.recipients if r.address))

    @property
    def status(self) -> str:
        return next((recipient.status for recipient in self.recipients if recipient.status), "")

    @property
    def reason(self) -> str:
        """The reason of the recipient that decided the verdict's kind."""
        for recipient in self.recipients:
            if recipient.kind == self.kind and recipient.reason:
                return recipient.reason
        return self.general_reason

    def as_json(self, **extra) -> dict:
        data = {
            "kind": self.kind,
            "reason": self.reason,
            "addresses": list(self.addresses),
            "status": self.status,
            "rule": self.rule,
            "mailing": self.mailing_id,
            "subscriber": self.subscriber_id,
            "recipients": [asdict(recipient) for recipient in self.recipients],
        }
        data.update(extra)
        return data


def classify(raw: bytes, envelope_recipients: Sequence[str] = ()) -> Verdict:
    """What the inbound message `raw` is; see the module docstring for the order of reading."""
    try:
        return _Reader(raw, envelope_recipients).verdict()
    except Exception as error:
        # The steps guard themselves; this is for a bug between them.
        return Verdict(kind="quarantined", rule=f"error:classify:{type(error).__name__}")


class _StepFailed(Exception):
    def __init__(self, rule: str):
        super().__init__(rule)
        self.rule = rule


@contextmanager
def _step(name: str) -> Iterator[None]:
    try:
        yield
    except _StepFailed:
        raise
    except Exception as error:
        raise _StepFailed(f"error:{name}:{type(error).__name__}") from error


class _Reader:
    def __init__(self, raw: bytes, envelope_recipients: Sequence[str]):
        self.raw = raw
        self.envelope_recipients = envelope_recipients
        self.msg: Message = Message()
        self.parts: list[Message] = []
        self.subject = ""
        self.message_id = ""
        self.mailing_id: int | None = None
        self.subscriber_id: int | None = None
        self.has_verp_token = False

    def verdict(self) -> Verdict:
        try:
            return self._read()
        except _StepFailed as failure:
            # The ids of a valid token stay (they link the message to its reader, for an
            # erasure); nothing is acted on for a quarantined message.
            return Verdict(
                kind="quarantined",
                rule=failure.rule,
                mailing_id=self.mailing_id,
                subscriber_id=self.subscriber_id,
                subject=self.subject,
                message_id=self.message_id,
            )

    def _read(self) -> Verdict:
        with _step("parse"):
            self.msg = email.message_from_bytes(_as_bytes(self.raw))
            self.parts = list(_outer_parts(self.msg))
        with _step("headers"):
            self.subject = _clip(_decode_header(_first_header(self.msg, "subject")), SUBJECT_MAX)
            self.message_id = _clip(
                _header_text(_first_header(self.msg, "message-id")), MESSAGE_ID_MAX
            )
        with _step("address"):
            verdict = self._read_address()
            if verdict:
                return verdict
        with _step("dsn"):
            verdict = self._read_dsn()
            if verdict:
                return verdict
        with _step("arf"):
            verdict = self._read_arf()
            if verdict:
                return verdict
        flufl_failed = None
        try:
            with _step("flufl.bounce"):
                verdict = self._read_flufl()
                if verdict:
                    return verdict
        except _StepFailed as failure:
            # all_failures stops at the first detector that raises (a message without From: makes
            # one fail), so the rest never ran: a plain auto-reply still reads as one, anything
            # else is quarantined with the detector's error as its rule.
            flufl_failed = failure
        with _step("text-bounce"):
            verdict = self._read_text_bounce()
            if verdict:
                return verdict
        with _step("auto-reply"):
            verdict = self._read_auto_reply()
            # DSNs carry Auto-Submitted too: after a failed detector, only an auto-reply's own
            # marks (its subject, X-Autoreply, …) are taken as proof.
            if verdict and not (flufl_failed and verdict.rule == "auto-reply:auto-submitted"):
                return verdict
        if flufl_failed:
            raise flufl_failed
        return self._verdict("unrecognised", "no-rule-matched")

    def _verdict(self, kind: str, rule: str, recipients: Sequence[Recipient] = (), **ids):
        if kind == "auto_reply":
            ids.setdefault("general_reason", "vacation")
        fields = {"mailing_id": self.mailing_id, "subscriber_id": self.subscriber_id, **ids}
        return Verdict(
            kind=kind,
            rule=rule,
            recipients=tuple(recipients),
            subject=self.subject,
            message_id=self.message_id,
            **fields,
        )

    # Step 1.

    def _read_address(self) -> Verdict | None:
        for address in self._addressed_to():
            local = address.rpartition("@")[0].strip('"').lower()
            purpose, plus, token = local.partition("+")
            if purpose == SUBSCRIBE_PURPOSE:
                return self._read_subscribe(token)
            if not plus or purpose not in (VERP_PURPOSE, MAILTO_PURPOSE):
                continue
            if purpose == MAILTO_PURPOSE:
                ids = _read_token(MAILTO_PURPOSE, token)
                if ids is None:
                    return self._verdict("quarantined", "mailto:forged-token")
                subscriber_id, topic_id = ids
                return self._verdict(
                    "unsubscribe",
                    "mailto:unsubscribe",
                    subscriber_id=subscriber_id,
                    topic_id=topic_id,
                )
            ids = _read_token(VERP_PURPOSE, token)
            if ids is None:
                return self._verdict("quarantined", "verp:forged-token")
            self.mailing_id, self.subscriber_id = ids
            self.has_verp_token = True
            return None
        return None

    def _read_subscribe(self, topic_key: str) -> Verdict:
        """A sign-up by empty mail (空メール登録): a person's phone wrote to subscribe@ or
        subscribe+TOPIC@. Whoever it claims to be from gets only the confirmation mail, as with
        the form. Mail that no person wrote (a bounce, an auto-reply, a list) is never answered
        (RFC 3834): it would start loops with other robots."""
        automatic = self._read_auto_reply() or self._automatic_rule()
        if automatic:
            return self._verdict("unrecognised", f"subscribe:automatic:{automatic.rule}")
        senders = _addresses(_header_text(_first_header(self.msg, "from")))
        if len(senders) != 1:
            return self._verdict("unrecognised", "subscribe:no-sender")
        if topic_key and not _TOPIC_KEY.fullmatch(topic_key):
            topic_key = "?"  # not one of ours: the services say so and offer all topics
        return self._verdict(
            "subscribe", "mailto:subscribe", sender=senders[0], topic_key=topic_key
        )

    def _automatic_rule(self) -> Verdict | None:
        """Marks of mail no person wrote, besides an auto-reply's: a report, a list or bulk
        mail, a mailer daemon."""
        if any(
            part.get_content_type() in (*DSN_TYPES, "message/feedback-report")
            for part in self.parts
        ):
            return self._verdict("unrecognised", "report")
        precedence = _header_text(_first_header(self.msg, "precedence")).lower()
        if precedence in ("bulk", "list", "junk") or _all_headers(self.msg, "list-id"):
            return self._verdict("unrecognised", "list")
        sender = " ".join(_addresses(_header_text(_first_header(self.msg, "from"))))
        if sender.rpartition("@")[0].startswith(BOUNCE_SENDERS):
            return self._verdict("unrecognised", "mailer-daemon")
        return None

    def _addressed_to(self) -> Iterator[str]:
        for value in self.envelope_recipients:
            yield from _addresses(str(value))
        for name in ADDRESSED_TO_HEADERS:
            for value in _all_headers(self.msg, name):
                yield from _addresses(_header_text(value))

    # Step 2.

    def _read_dsn(self) -> Verdict | None:
        reports = [part for part in self.parts if part.get_content_type() in DSN_TYPES]
        if not reports:
            return None
        recipients: dict[str, Recipient] = {}
        blocks = [block for part in reports for block in _field_blocks(part)]
        per_recipient = [b for b in blocks if _field(b, "final-recipient", "original-recipient")]
        human = self._human_readable_text()
        for fields in per_recipient:
            action = _field(fields, "action").lower()
            diagnostic = _one_line(_DIAGNOSTIC_TYPE.sub("", _field(fields, "diagnostic-code")))
            # Status is mandatory, but some MTAs leave it out and give the code in the diagnostic,
            # or give words in it instead ("5.0.0 (recipient reached disk quota)", "553 …").
            status_field = _one_line(_field(fields, "status"))
            status = reasons.status_in(status_field, field=True) or reasons.status_in(diagnostic)
            if not diagnostic and status_field != status:
                diagnostic = status_field
            if not action and not status:
                continue  # a block that says nothing about a delivery
            # Original-Recipient is the address we gave the MTA, i.e. the subscriber's; the
            # Final-Recipient may be an alias or a forwarding target nobody subscribed.
            address = _dsn_address(_field(fields, "original-recipient"))
            address = address or _dsn_address(_field(fields, "final-recipient"))
            if not address:
                continue
            # The SMTP command refused, which only the human-readable part tells.
            stage = reasons.stage_in(human, address)
            recipient = read_recipient(
                address, status=status, diagnostic=diagnostic, action=action, stage=stage
            )
            # Read again without the action (which alone can make a silent block "expired",
            # "delivered" or "delayed") only when it may have said nothing: a second reading
            # costs a fifth of classifying.
            said_nothing = recipient.reason in (
                "undefined",
                "expired",
                "delivered",
                "delayed",
            ) and (
                reasons.reason(status=status, diagnostic=diagnostic, address=address) == "undefined"
            )
            if said_nothing and len(per_recipient) == 1:
                # The words are often only in the human-readable part (Japanese carriers).
                text = _clip(_one_line(human), 2000)
                recipient = read_recipient(
                    address, status=status, diagnostic=text, action=action, stage=stage
                )
                if diagnostic:
                    recipient = Recipient(
                        address, recipient.kind, recipient.status, diagnostic, recipient.reason
                    )
            previous = recipients.get(address)
            if previous is None or _weighs_more(recipient, previous):
                recipients[address] = recipient
        if recipients:
            return self._bounce_verdict(
                _verdict_kind(recipients.values()), "dsn", list(recipients.values())
            )
        # Nothing readable (truncated, or failures without an address): let flufl.bounce try.
        return None

    def _human_readable_text(self) -> str:
        for part in self.parts:
            if part.get_content_type() == "text/plain":
                return _part_text(part)
        return ""

    # Step 3.

    def _read_arf(self) -> Verdict | None:
        reports = [p for p in self.parts if p.get_content_type() == "message/feedback-report"]
        if not reports:
            return None
        fields = [field for part in reports for block in _field_blocks(part) for field in block]
        feedback_type = (_field(fields, "feedback-type").split() or [""])[0].lower()
        feedback_type = re.sub(r"[^a-z0-9_.-]", "", feedback_type)
        recipients: dict[str, Recipient] = {}
        for name, value in fields:
            if name not in ("original-rcpt-to", "removal-recipient"):
                continue
            for address in _addresses(value):
                # A redacted address names nobody, and would name the wrong reader if it did.
                if not _REDACTED.match(address.rpartition("@")[0]):
                    recipients.setdefault(
                        address, Recipient(address, "complaint", reason="feedback")
                    )
        if not self.has_verp_token:
            candidates = [v for n, v in fields if n == "original-mail-from"]
            candidates += self._embedded_header_values()
            self._take_embedded_token(candidates)
        return self._verdict(
            "complaint",
            f"arf:{feedback_type or 'unknown'}",
            list(recipients.values()),
            general_reason="feedback",
        )

    # Step 4.

    def _read_flufl(self) -> Verdict | None:
        # Its detectors run regular expressions over every part: without this, a bounced 20 MB
        # PDF took 9.5 s. No detector reads an attachment, so blank them (later steps read
        # headers and text parts only).
        for part in self.msg.walk():
            if part.get_content_maintype() in ("application", "image", "audio", "video"):
                part.set_payload("")
        temporary, permanent = flufl.bounce.all_failures(self.msg)
        failed = {_flufl_address(a) for a in (*permanent, *temporary)} - {""}
        if not failed:
            return None
        text = _before_quoted_original(self._bounce_text())
        recipients = _read_in_text(text, sorted(failed))
        return self._bounce_verdict(_verdict_kind(recipients), "flufl.bounce", recipients)

    def _bounce_text(self) -> str:
        """The human-readable text of a bounce: its text parts, one paragraph or more each."""
        return "\n\n".join(
            _part_text(part)
            for part in self.parts
            if part.get_content_type() in ("text/plain", "text/html")
        )[:TEXT_LIMIT]

    # Step 4b.

    def _read_text_bounce(self) -> Verdict | None:
        """A bounce in words only, from an MTA flufl.bounce does not know (DragonFly, OpenSMTPD,
        Lotus Notes, carriers' and ISPs' own): recognised by its sender (MAILER-DAEMON,
        postmaster) or its subject, its recipients read from its words up to the quoted
        original, and each one's reason from the words around it."""
        sender = " ".join(_addresses(_header_text(_first_header(self.msg, "from"))))
        local = sender.rpartition("@")[0]
        if not (local.startswith(BOUNCE_SENDERS) or _BOUNCE_SUBJECT.search(self.subject)):
            return None
        text = _before_quoted_original(self._bounce_text())
        own = set(_addresses(_header_text(_first_header(self.msg, "to")))) | {sender}
        found = [
            address
            for address in dict.fromkeys(a.lower() for a in _TEXT_ADDRESS.findall(text))
            if address not in own
            and not _TOKEN_ADDRESS.search(address)
            and not address.rpartition("@")[0].startswith(BOUNCE_SENDERS)
        ]
        recipients = _read_in_text(text, found[:20])
        if not recipients:
            # Our own mail names its reader in the token: one recipient, the token's.
            if not (self.has_verp_token or self._take_embedded_token(self._body_texts())):
                return None
            address = self._original_recipient()
            recipients = [read_recipient(address, diagnostic=_one_line(text[:2000]))]
        return self._bounce_verdict(_verdict_kind(recipients), "text", recipients)

    def _original_recipient(self) -> str:
        """The one To: address of the bounced original, attached or quoted: our mail goes to one
        reader each. "" when there is none, or more than one."""
        found: list[str] = []
        for part in self.parts:
            if part.get_content_type() in EMBEDDED_TYPES:
                headers = _embedded_headers(part)
                if headers is not None:
                    found = _addresses(_header_text(_first_header(headers, "to")))
                    break
        else:
            text = self._bounce_text()
            quoted = _QUOTED_ORIGINAL.search(text)
            to = _QUOTED_TO.search(text, quoted.start()) if quoted else None
            found = _addresses(to.group(1)) if to else []
        return found[0].lower() if len(found) == 1 else ""

    # Step 5.

    def _bounce_verdict(self, kind: str, rule: str, recipients: list[Recipient]) -> Verdict:
        if not self.has_verp_token:
            with _step("embedded-token"):
                candidates = self._embedded_header_values() + self._body_texts()
                if self._take_embedded_token(candidates):
                    rule += "+embedded-token"
        return self._verdict(kind, rule, recipients)

    def _embedded_header_values(self) -> list[str]:
        values = []
        for part in self.parts:
            if part.get_content_type() not in EMBEDDED_TYPES:
                continue
            headers = _embedded_headers(part)
            if headers is None:
                continue
            for name in ("return-path", "list-unsubscribe"):
                values += [_header_text(value) for value in _all_headers(headers, name)]
        return values

    def _body_texts(self) -> list[str]:
        # Plain-text bounces quote the original's headers, List-Unsubscribe included.
        return [
            _part_text(part)
            for part in self.parts
            if part.get_content_maintype() == "text" and part.get_content_type() not in DSN_TYPES
        ]

    def _take_embedded_token(self, texts: Sequence[str]) -> bool:
        """Take the ids of the first valid token in `texts` (VERP before mailto)."""
        mailing_id, subscriber_id = token_ids(texts)
        if subscriber_id is None:
            return False
        self.mailing_id, self.subscriber_id = mailing_id, subscriber_id
        return True

    # Step 6.

    def _read_auto_reply(self) -> Verdict | None:
        auto_submitted = _header_text(_first_header(self.msg, "auto-submitted"))
        if auto_submitted and auto_submitted.split(";")[0].strip().lower() != "no":
            return self._verdict("auto_reply", "auto-reply:auto-submitted")
        for name in ("x-autoreply", "x-autorespond"):
            if _all_headers(self.msg, name):
                return self._verdict("auto_reply", f"auto-reply:{name}")
        if _header_text(_first_header(self.msg, "precedence")).lower() == "auto_reply":
            return self._verdict("auto_reply", "auto-reply:precedence")
        if _is_out_of_office(self.subject):
            if _all_headers(self.msg, "x-auto-response-suppress"):
                return self._verdict("auto_reply", "auto-reply:x-auto-response-suppress")
            return self._verdict("auto_reply", "auto-reply:subject")
        return None


# Messages and parts.


def _as_bytes(raw) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw or b"")


def _outer_parts(msg: Message) -> Iterator[Message]:
    """The message and its MIME parts, but nothing inside a message/* part (a bounced original,
    a DSN's header blocks): those are read on purpose, and only for their headers."""
    stack = [msg]
    count = 0
    while stack and count < PARTS_LIMIT:
        part = stack.pop()
        count += 1
        yield part
        if part.get_content_maintype() == "multipart":
            children = part.get_payload()
            if isinstance(children, list):  # part.is_multipart(), spelled for the type checker
                stack.extend(child for child in reversed(children) if isinstance(child, Message))


def _embedded_headers(part: Message) -> Message | None:
    if part.get_content_maintype() == "message":
        payload = part.get_payload()
        if isinstance(payload, list):
            return payload[0] if payload and isinstance(payload[0], Message) else None
    return HeaderParser().parsestr(_part_text(part))


def _field_blocks(part: Message) -> list[list[tuple[str, str]]]:
    """The header blocks of a delivery-status or feedback-report part, in order, as lists of
    (lower-cased name, unfolded value). The email parser presents message/delivery-status blocks as
    sub-messages but any other message/* type as one message whose body holds the later blocks,
    and base64 or quoted-printable (allowed for the global types) as a body with no headers."""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _split_blocks(_part_text(part))
    blocks = []
    for sub in payload:
        if not isinstance(sub, Message):
            continue
        fields = [(str(name).lower(), _header_text(value)) for name, value in sub.raw_items()]
        if fields:
            blocks.append(fields)
        rest = _raw_payload(sub)
        if isinstance(rest, str) and rest.strip():
            data = _transfer_decode(rest[:TEXT_LIMIT], encoding)
            blocks += _split_blocks(_decode_bytes(data, "utf-8"))
    return blocks


def _split_blocks(text: str) -> list[list[tuple[str, str]]]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = []
    for chunk in re.split(r"\n[ \t]*\n", text):
        fields: list[tuple[str, str]] = []
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}")
            elif ":" in line:
                name, _, value = line.partition(":")
                fields.append((name.strip().lower(), value.strip()))
        if fields:
            blocks.append(fields)
    return blocks


def _field(fields: Sequence[tuple[str, str]], *names: str) -> str:
    for wanted in names:
        for name, value in fields:
            if name == wanted and value:
                return value
    return ""


def _part_text(part: Message) -> str:
    """A text part's body as text, at most about TEXT_LIMIT of it."""
    payload = _raw_payload(part)
    if not isinstance(payload, str):
        return ""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    data = _transfer_decode(payload[:TEXT_LIMIT], encoding)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _decode_bytes(data, charset)


def _raw_payload(part: Message):
    # Not get_payload(): without decode it turns 8-bit bytes into U+FFFD when the declared charset
    # is not a Python codec ("x-sjis") or wrong, and with decode it decodes all of a 20 MB part.
    # compat32 keeps the undecoded text (8-bit bytes as surrogates) here.
    return getattr(part, "_payload", None)


def _transfer_decode(text: str, encoding: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding == "base64":
        # Tolerant of what a truncated or cut-short part leaves: junk, no padding.
        letters = re.sub(rb"[^A-Za-z0-9+/]", b"", data.split(b"=", 1)[0])
        letters = letters[: len(letters) - (len(letters) % 4 == 1)]
        try:
            return base64.b64decode(letters + b"=" * (-len(letters) % 4))
        except (binascii.Error, ValueError):
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


# Text and headers.


def _codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or None for a label that says nothing usable."""
    label = (label or "").strip().strip("\"'").lower()
    if label in _UNLABELLED:
        return None
    name = _CODEC_ALIASES.get(label, label)
    try:
        info = codecs.lookup(name)
        # Refuses codecs that are not text encodings (base64, zlib…); b"" would not even look.
        b" ".decode(info.name)
    except LookupError:
        return None
    except (UnicodeError, ValueError):
        pass
    return info.name


def _decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes as text: the label when it fits, else what Japanese mail usually is; never raises."""
    if not data:
        return ""
    codec = _codec(charset)
    if any(escape in data for escape in _ISO2022_ESCAPES):
        # ISO-2022-JP is 7-bit, so it would pass for ASCII or UTF-8 under a wrong label.
        iso2022 = codec if codec and codec.startswith("iso2022_jp") else "iso2022_jp_ext"
        return data.decode(iso2022, "replace")
    # EUC-JP before Shift_JIS: EUC-JP text nearly always passes for Shift_JIS too, while
    # Shift_JIS text (hiragana and punctuation lead with 0x81-0x83) is almost never valid EUC-JP.
    guesses = [codec, "utf-8"] if codec else ["utf-8", "euc_jp", "cp932"]
    for guess in guesses:
        try:
            return data.decode(guess)
        except UnicodeError:
            continue
    return data.decode(codec or "utf-8", "replace")


def _header_text(value) -> str:
    """A raw header value as one line of text; 8-bit bytes are decoded as best we can."""
    if value is None:
        return ""
    text = str(value)
    if any("\udc80" <= char <= "\udcff" for char in text):
        text = _decode_bytes(text.encode("utf-8", "surrogateescape"))
    return _one_line(text)


def _decode_header(value) -> str:
    """A header value with its RFC 2047 encoded-words decoded, in Japanese charsets too."""
    text = _header_text(value)
    if "=?" not in text:
        return text
    try:
        words = decode_header(text)
    except Exception:
        return text
    decoded = []
    for word, charset in words:
        if isinstance(word, str):
            decoded.append(word)
        elif charset is None:
            decoded.append(word.decode("raw-unicode-escape", "replace"))
        else:
            decoded.append(_decode_bytes(word, charset))
    return _one_line("".join(decoded))


def _first_header(msg: Message, name: str):
    values = _all_headers(msg, name)
    return values[0] if values else None


def _all_headers(msg: Message, name: str) -> list:
    # raw_items, not get(): compat32 turns a value with 8-bit bytes into a Header object.
    return [value for key, value in msg.raw_items() if str(key).lower() == name]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text[:limit]


def _addresses(value: str) -> list[str]:
    found = []
    for _name, address in getaddresses([value]):
        address = address.strip().strip("<>").lower()
        if "@" in address and address.rpartition("@")[0]:
            found.append(address)
    return found


def _dsn_address(value: str) -> str:
    """The address in a Final- or Original-Recipient field: "rfc822; <user@example.com>"."""
    address_type, semicolon, address = value.partition(";")
    if not semicolon:
        address_type, address = "rfc822", value
    address = address.strip()
    if address_type.strip().lower() == "utf-8":
        address = _XTEXT_UNICODE.sub(lambda m: _unicode_char(m.group(1)), address)
    if "<" in address and ">" in address:
        address = address[address.index("<") + 1 : address.index(">")]
    address = re.sub(r"\([^)]*\)", "", address).strip()
    address = address.split()[0] if address else ""
    address = address.strip("<>\"'").lower()
    if "@" not in address or not address.rpartition("@")[0] or not address.rpartition("@")[2]:
        return ""
    return address


def _unicode_char(hex_digits: str) -> str:
    try:
        return chr(int(hex_digits, 16))
    except (ValueError, OverflowError):
        return "\ufffd"


def _flufl_address(address: bytes) -> str:
    text = address.decode("utf-8", "replace") if isinstance(address, bytes) else str(address)
    return text.strip().strip("<>").lower()


def _weighs_more(new: Recipient, old: Recipient) -> bool:
    """Two blocks for one address (a DSN after forwarding): the one that decides more wins."""
    return (
        _KIND_ORDER.index(new.kind) < _KIND_ORDER.index(old.kind)
        if (new.kind in _KIND_ORDER and old.kind in _KIND_ORDER)
        else False
    )


def _verdict_kind(recipients: Iterable[Recipient]) -> str:
    kinds = {recipient.kind for recipient in recipients}
    return next((kind for kind in _KIND_ORDER if kind in kinds), "unrecognised")


def _before_quoted_original(text: str) -> str:
    match = _QUOTED_ORIGINAL.search(text)
    return text[: match.start()] if match else text


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _read_in_text(text: str, addresses: Sequence[str]) -> list[Recipient]:
    """Each recipient of a bounce in words, its reason read from what the text says about it:
    the lines from its mention up to the next recipient's, else the text before the first
    recipient (the "the following addresses were unknown:" heading), else the whole text (a
    bounce that names one recipient and says why elsewhere). An address the text never says
    anything about stays undefined, with the text as its diagnostic."""
    folded = text.casefold()
    action = "delayed" if reasons.is_delay_warning(folded) else ""
    mentions = sorted((folded.find(a), a) for a in addresses)
    starts = [at for at, _ in mentions if at >= 0]
    preamble = text[: starts[0]][-600:] if starts else ""
    recipients = []
    for at, address in mentions:
        if at < 0:
            own = ""
        else:
            # Its paragraph and the next (the reason often follows on its own), no further: a
            # disclaimer or a signature further down is not about this recipient.
            end = min([start for start in starts if start > at] + [at + 600, len(text)])
            breaks = [match.start() for match in _PARAGRAPH_BREAK.finditer(text, at, end)]
            own = text[at : breaks[1] if len(breaks) > 1 else end]
        stage = reasons.stage_in(text, address)
        for words in (own, preamble, text[:2000]):
            recipient = read_recipient(
                address, diagnostic=_one_line(words), action=action, stage=stage
            )
            if recipient.reason != "undefined":
                break
        else:
            recipient = read_recipient(address, diagnostic=_one_line(own or text[:2000]))
        gave_up = reasons.expired_after_retries(recipient.reason, text)
        if gave_up != recipient.reason:
            stated = reasons.status_in(recipient.diagnostic)
            status = stated or reasons.default_status(gave_up)
            recipient = Recipient(address, kind_of(gave_up), status, recipient.diagnostic, gave_up)
        recipients.append(recipient)
    return sorted(recipients, key=lambda recipient: recipient.address)


def _is_out_of_office(subject: str) -> bool:
    subject = subject.lstrip(_SUBJECT_LEAD).casefold()
    return subject.startswith(AUTO_REPLY_SUBJECTS)


def token_ids(texts: Iterable[str]) -> tuple[int | None, int | None]:
    """(mailing_id, subscriber_id) of the first valid token of ours in `texts`: a VERP address
    (both ids) before a mailto unsubscribe address (the reader only: the topic of a quoted link
    is not what the reader asked for). Forged tokens are skipped."""
    found = [match.groups() for text in texts for match in _TOKEN_ADDRESS.finditer(text)]
    for purpose, token in sorted(found, key=lambda pair: pair[0].lower() != VERP_PURPOSE):
        purpose = purpose.lower()
        ids = _read_token(purpose, token)
        if ids is None:
            continue
        return (ids[0], ids[1]) if purpose == VERP_PURPOSE else (None, ids[0])
    return None, None


def _read_token(purpose: str, token: str) -> tuple[int, ...] | None:
    """The two ids of a valid address token; None when forged, malformed or unreadable."""
    if not token or len(token) > TOKEN_MAX:
        return None
    try:
        return tokens.read_address_token(purpose, token, 2)
    except Exception:
        # InvalidToken, and ValueError for digits int() refuses (e.g. "²", which isdigit()).
        return None
