"""classify(): our own samples, tokens, charsets, and messages that must not break it."""

import base64
import random
from email.message import Message
from pathlib import Path

import flufl.bounce
import pytest

from merumaga.bounces import classify as classify_module
from merumaga.bounces.classify import KINDS, Recipient, Verdict, classify
from merumaga.subscribers.tokens import address_token

SAMPLES = Path(__file__).parent / "samples"
MAILING, SUBSCRIBER, TOPIC = 7, 42, 3


def verp(mailing: int = MAILING, subscriber: int = SUBSCRIBER) -> str:
    return address_token("bounce", mailing, subscriber)


def mailto(subscriber: int = SUBSCRIBER, topic: int = TOPIC) -> str:
    return address_token("unsubscribe", subscriber, topic)


def forged(token: str) -> str:
    """The same ids with one character of the MAC changed."""
    return token[:-1] + ("0" if token[-1] != "0" else "1")


def sample(name: str, *, verp_token: str | None = None, mailto_token: str | None = None) -> bytes:
    """A sample with real tokens in place of {{VERP}} and {{MAILTO}}: they depend on SECRET_KEY."""
    raw = (SAMPLES / name).read_bytes()
    raw = raw.replace(b"{{VERP}}", (verp_token or verp()).encode())
    return raw.replace(b"{{MAILTO}}", (mailto_token or mailto()).encode())


def dsn(recipient_blocks: str, *, to: str = "bounces@news.example.jp", human: bytes = b"") -> bytes:
    """A minimal multipart/report DSN around the given per-recipient blocks."""
    return (
        b"From: MAILER-DAEMON@mail.example.net\n"
        b"To: " + to.encode() + b"\n"
        b"Subject: Delivery Status Notification\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        b"\n"
        b"--b\n" + (human or b"Content-Type: text/plain\n\nSee below.\n") + b"\n"
        b"--b\n"
        b"Content-Type: message/delivery-status\n"
        b"\n"
        b"Reporting-MTA: dns; mail.example.net\n"
        b"\n" + recipient_blocks.encode() + b"\n"
        b"--b--\n"
    )


def reply(subject: str, *headers: str, body: str = "Thank you for your message.\n") -> bytes:
    """A plain reply to a mailing, with From: (flufl.bounce's Yale detector needs one)."""
    lines = [
        "From: Reader <reader@example.com>",
        "To: news@news.example.jp",
        f"Subject: {subject}",
        "Message-ID: <reply.1@example.com>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return "\n".join(lines).encode()


def encoded_word(text: str, codec: str, label: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


# Our samples.

SAMPLE_VERDICTS = {
    # name: (kind, addresses, status, rule, mailing_id, subscriber_id)
    "postfix_dsn.eml": (
        "hard", ("hanako@example.net",), "5.1.1", "dsn+embedded-token", None, SUBSCRIBER,
    ),
    # A carrier's 4.0.0 with "unknown user": the words decide.
    "docomo_unknown_user.eml": (
        "hard", ("taro.example@docomo.ne.jp",), "4.0.0", "dsn", MAILING, SUBSCRIBER,
    ),
    # No status in the message: filled in from the reason.
    "shift_jis_bounce.eml": (
        "hard", ("jiro@example.co.jp",), "5.1.1", "flufl.bounce+embedded-token", None, SUBSCRIBER,
    ),
    "arf_complaint.eml": ("complaint", (), "", "arf:abuse", MAILING, SUBSCRIBER),
    "vacation_ja.eml": ("auto_reply", (), "", "auto-reply:auto-submitted", MAILING, SUBSCRIBER),
    "vacation_en.eml": ("auto_reply", (), "", "auto-reply:subject", None, None),
    "delayed_dsn.eml": ("notice", ("saburo@example.ac.jp",), "4.4.7", "dsn", MAILING, SUBSCRIBER),
    "global_dsn.eml": ("hard", ("jürgen@bücher.example",), "5.1.1", "dsn", MAILING, SUBSCRIBER),
    # A full mailbox, though its status is permanent: scored, not suppressed.
    "truncated.eml": ("soft", ("shiro@example.net",), "5.2.2", "dsn", MAILING, SUBSCRIBER),
    # flufl.bounce fails on it (no From:); its subject and words still say what it is.
    "no_from.eml": ("hard", ("goro@example.org",), "5.1.1", "text", MAILING, SUBSCRIBER),
}  # fmt: skip


def test_every_sample_has_an_expectation():
    assert sorted(SAMPLE_VERDICTS) == sorted(path.name for path in SAMPLES.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(SAMPLE_VERDICTS))
def test_sample(name):
    kind, addresses, status, rule, mailing_id, subscriber_id = SAMPLE_VERDICTS[name]
    verdict = classify(sample(name))
    assert (verdict.kind, verdict.addresses, verdict.status, verdict.rule) == (
        kind,
        addresses,
        status,
        rule,
    )
    assert (verdict.mailing_id, verdict.subscriber_id) == (mailing_id, subscriber_id)
    assert verdict.topic_id is None


def test_sample_subjects_are_decoded():
    assert classify(sample("docomo_unknown_user.eml")).subject == "配信不能のお知らせ"
    assert classify(sample("shift_jis_bounce.eml")).subject == "メール配信エラー"
    assert classify(sample("vacation_ja.eml")).subject == "不在通知: 週刊ニュース 第12号"


def test_postfix_recipient_details():
    [recipient] = classify(sample("postfix_dsn.eml")).recipients
    assert recipient == Recipient(
        address="hanako@example.net",
        kind="hard",
        status="5.1.1",
        diagnostic="550 5.1.1 <hanako@example.net>: Recipient address rejected: User unknown in "
        "virtual mailbox table",
        reason="user_unknown",
    )


def test_a_bounce_is_not_an_auto_reply_though_it_says_auto_submitted():
    raw = sample("postfix_dsn.eml")
    assert b"Auto-Submitted: auto-replied" in raw
    assert classify(raw).kind == "hard"


# Step 1: the address it was sent to.


def test_verp_token_from_envelope_recipients():
    verdict = classify(sample("postfix_dsn.eml"), [f"bounce+{verp(8, 43)}@news.example.jp"])
    assert (verdict.kind, verdict.rule) == ("hard", "dsn")
    assert (verdict.mailing_id, verdict.subscriber_id) == (8, 43)


def test_verp_token_from_delivered_to_header():
    raw = f"Delivered-To: bounce+{verp(8, 43)}@news.example.jp\n".encode()
    verdict = classify(raw + sample("postfix_dsn.eml"))
    assert (verdict.kind, verdict.rule) == ("hard", "dsn")
    assert (verdict.mailing_id, verdict.subscriber_id) == (8, 43)


def test_verp_token_case_and_domain_do_not_matter():
    address = f"Bounce+{verp(8, 43).upper()}@Other.Example"
    verdict = classify(sample("postfix_dsn.eml"), [address])
    assert (verdict.mailing_id, verdict.subscriber_id) == (8, 43)


def test_envelope_comes_before_headers():
    raw = f"X-Original-To: bounce+{forged(verp(9, 44))}@news.example.jp\n".encode()
    verdict = classify(raw + sample("postfix_dsn.eml"), [f"<bounce+{verp(8, 43)}@x.example>"])
    assert (verdict.rule, verdict.mailing_id, verdict.subscriber_id) == ("dsn", 8, 43)


@pytest.mark.parametrize("where", ["envelope", "header"])
def test_forged_verp_token_is_quarantined(where):
    address = f"bounce+{forged(verp())}@news.example.jp"
    if where == "envelope":
        verdict = classify(sample("postfix_dsn.eml"), [address])
    else:
        verdict = classify(f"Delivered-To: {address}\n".encode() + sample("postfix_dsn.eml"))
    assert (verdict.kind, verdict.rule) == ("quarantined", "verp:forged-token")
    assert (verdict.mailing_id, verdict.subscriber_id, verdict.recipients) == (None, None, ())


@pytest.mark.parametrize(
    "token", ["", "hello", "7-42", "7-abcdef0123456789", "x-42-abcdef0123456789", "²-4-0123"]
)
def test_malformed_verp_token_is_quarantined(token):
    verdict = classify(sample("postfix_dsn.eml"), [f"bounce+{token}@news.example.jp"])
    assert (verdict.kind, verdict.rule) == ("quarantined", "verp:forged-token")


def test_verp_token_for_other_ids_is_forged():
    mac = verp(7, 42).rsplit("-", 1)[1]
    verdict = classify(sample("postfix_dsn.eml"), [f"bounce+7-43-{mac}@news.example.jp"])
    assert verdict.rule == "verp:forged-token"


def test_mailto_token_for_verp_is_forged():
    # The purposes are salted apart: an unsubscribe token is no bounce token.
    verdict = classify(sample("postfix_dsn.eml"), [f"bounce+{mailto(7, 42)}@news.example.jp"])
    assert verdict.rule == "verp:forged-token"


def unsubscribe_mail(to: str) -> bytes:
    return (
        f"From: Reader <reader@example.com>\nTo: {to}\nSubject: unsubscribe\n"
        "Message-ID: <u.1@example.com>\n\nThis mail was sent by the mail client's unsubscribe "
        "button.\n"
    ).encode()


def test_valid_mailto_is_an_unsubscribe():
    verdict = classify(unsubscribe_mail(f"<unsubscribe+{mailto(42, 3)}@news.example.jp>"))
    assert (verdict.kind, verdict.rule) == ("unsubscribe", "mailto:unsubscribe")
    assert (verdict.subscriber_id, verdict.topic_id, verdict.mailing_id) == (42, 3, None)
    assert verdict.subject == "unsubscribe"


def test_valid_mailto_through_envelope_on_any_domain():
    address = f"UNSUBSCRIBE+{mailto(5, 0).upper()}@mx.other.example"
    verdict = classify(unsubscribe_mail("someone@example.org"), [address])
    assert (verdict.kind, verdict.subscriber_id, verdict.topic_id) == ("unsubscribe", 5, 0)


def test_forged_mailto_is_quarantined():
    verdict = classify(unsubscribe_mail(f"unsubscribe+{forged(mailto())}@news.example.jp"))
    assert (verdict.kind, verdict.rule) == ("quarantined", "mailto:forged-token")
    assert (verdict.subscriber_id, verdict.topic_id) == (None, None)


def test_malformed_mailto_is_quarantined():
    verdict = classify(unsubscribe_mail("unsubscribe+please@news.example.jp"))
    assert (verdict.kind, verdict.rule) == ("quarantined", "mailto:forged-token")


def test_other_plus_addresses_are_not_ours():
    verdict = classify(reply("Hello", body="Hi.\n"), ["newsletter+weekly@news.example.jp"])
    assert (verdict.kind, verdict.rule) == ("unrecognised", "no-rule-matched")


# Step 2: RFC 3464.

FAILED_511 = """\
Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown
"""


def test_dsn_recipients_in_order_with_their_reasons():
    blocks = (
        "Final-Recipient: rfc822; <Soft@Example.org>\nAction: failed\nStatus: 4.2.2\n\n"
        + FAILED_511.format(address="hard@example.org")
        + "\nFinal-Recipient: rfc822; late@example.org\nAction: delayed\nStatus: 4.4.1\n"
        + "\nFinal-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n"
    )
    verdict = classify(dsn(blocks))
    assert (verdict.kind, verdict.rule, verdict.status, verdict.reason) == (
        "hard",
        "dsn",
        "4.2.2",
        "user_unknown",
    )
    assert verdict.recipients == (
        Recipient("soft@example.org", "soft", "4.2.2", reason="mailbox_full"),
        Recipient("hard@example.org", "hard", "5.1.1", "550 5.1.1 User unknown", "user_unknown"),
        Recipient("late@example.org", "notice", "4.4.1", reason="delayed"),
        Recipient("ok@example.org", "notice", "2.0.0", reason="delivered"),
    )


def test_dsn_failed_with_4xx_status_is_soft():
    verdict = classify(
        dsn("Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 4.4.7\n")
    )
    assert (verdict.kind, verdict.addresses, verdict.status, verdict.reason) == (
        "soft",
        ("a@example.org",),
        "4.4.7",
        "expired",
    )


def test_dsn_failed_without_status_or_words_is_undefined_and_soft():
    # A mis-read that suppresses a reader is the costly one: no reason, no suppression.
    verdict = classify(
        dsn("Final-Recipient: rfc822;a@example.org\nAction: failed\nDiagnostic-Code: smtp; no\n")
    )
    assert (verdict.kind, verdict.addresses, verdict.status, verdict.reason) == (
        "soft",
        ("a@example.org",),
        "",
        "undefined",
    )


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        ("5.0.0 (recipient reached disk quota)", "soft", "mailbox_full"),
        ("553 Exceeded maximum inbound message size", "sender", "policy_violation"),
        ("5.0.0 (no such user here)", "hard", "user_unknown"),
    ],
)
def test_dsn_status_field_with_words_instead_of_a_diagnostic(status, kind, reason):
    verdict = classify(
        dsn(f"Final-Recipient: rfc822;a@example.org\nAction: failed\nStatus: {status}\n")
    )
    assert (verdict.kind, verdict.reason) == (kind, reason)


def test_dsn_prefers_original_recipient():
    # Original-Recipient is what we sent to; Final-Recipient here is the forwarding target.
    blocks = (
        "Original-Recipient: rfc822;subscriber@example.org\n"
        "Final-Recipient: rfc822;inbox-77@mailhost.internal\nAction: failed\nStatus: 5.2.1\n"
    )
    assert classify(dsn(blocks)).addresses == ("subscriber@example.org",)


@pytest.mark.parametrize(("action", "reason"), [("relayed", "delivered"), ("delayed", "delayed")])
def test_dsn_without_failure_is_a_notice(action, reason):
    verdict = classify(
        dsn(f"Final-Recipient: rfc822; a@example.org\nAction: {action}\nStatus: 2.0.0\n")
    )
    assert (verdict.kind, verdict.rule, verdict.addresses, verdict.reason) == (
        "notice",
        "dsn",
        ("a@example.org",),
        reason,
    )


def test_dsn_diagnostic_is_one_line_and_clipped():
    blocks = FAILED_511.format(address="a@example.org").replace(
        "User unknown", "User\n  unknown " + "x" * 400
    )
    [recipient] = classify(dsn(blocks)).recipients
    assert recipient.diagnostic.startswith("550 5.1.1 User unknown xxx")
    assert len(recipient.diagnostic) == 300


CARRIER_4XX = """\
Final-Recipient: rfc822; {address}
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; {diagnostic}
"""


@pytest.mark.parametrize(
    "address",
    [
        "a@docomo.ne.jp",
        "a@ezweb.ne.jp",
        "a@au.com",
        "a@i.softbank.jp",
        "a@softbank.ne.jp",
        "a@t.vodafone.ne.jp.softbank.ne.jp",
        "a@disney.ne.jp",
        "a@ymobile.ne.jp",
        "a@pdx.ne.jp",
        "a@rakumail.jp",
        "a@example.net",  # the same words from anyone else mean the same
    ],
)
@pytest.mark.parametrize(
    "diagnostic",
    ["550 Unknown user", "No such user here", "mailbox does not exist", "宛先不明"],
)
def test_unknown_user_with_a_temporary_status_is_user_unknown(address, diagnostic):
    # Carriers answer unknown users with a 4.0.0 status: the words weigh more than a generic
    # detail.
    verdict = classify(dsn(CARRIER_4XX.format(address=address, diagnostic=diagnostic)))
    assert (verdict.kind, verdict.reason, verdict.addresses) == ("hard", "user_unknown", (address,))


@pytest.mark.parametrize(
    ("diagnostic", "kind", "reason"),
    [
        ("421 Too many connections", "soft", "too_many_connections"),
        ("421 4.7.0 [TSS04] Messages temporarily deferred due to user complaints", "sender",
         "blocked"),
        # A failed report with a temporary status: the MTA gave up retrying.
        ("450 try again later", "soft", "expired"),
    ],
)  # fmt: skip
def test_other_4xx_are_not_user_unknown(diagnostic, kind, reason):
    verdict = classify(dsn(CARRIER_4XX.format(address="a@docomo.ne.jp", diagnostic=diagnostic)))
    assert (verdict.kind, verdict.reason) == (kind, reason)


@pytest.mark.parametrize(
    ("codec", "label"),
    [
        ("iso2022_jp", "ISO-2022-JP"),
        ("cp932", "Shift_JIS"),
        ("cp932", "x-sjis"),
        ("cp932", "windows-31j"),
        ("cp932", "CP932"),
        ("euc_jp", "EUC-JP"),
        ("cp932", "us-ascii"),  # mislabelled: sniffed
        ("euc_jp", "x-no-such-charset"),  # unknown label: sniffed
    ],
)
def test_carrier_reason_read_from_japanese_human_readable_part(codec, label):
    # No Diagnostic-Code: the only reason given is the Japanese text, which must be decoded.
    text = "次の宛先に配信できませんでした。\n理由: 宛先不明\n".encode(codec)
    human = f"Content-Type: text/plain; charset={label}\n\n".encode() + text
    block = "Final-Recipient: rfc822; a@docomo.ne.jp\nAction: failed\nStatus: 4.0.0\n"
    verdict = classify(dsn(block, human=human))
    assert (verdict.kind, verdict.rule, verdict.reason) == ("hard", "dsn", "user_unknown")
    [recipient] = verdict.recipients
    assert "宛先不明" in recipient.diagnostic  # the words that decided, for the editor to see


def test_dsn_inside_the_bounced_original_is_not_read():
    # A double bounce: the returned original is itself a DSN, about someone else.
    inner = dsn(FAILED_511.format(address="other@example.org"))
    inner = inner.replace(b'boundary="b"', b'boundary="c"').replace(b"\n--b", b"\n--c").decode()
    raw = dsn(FAILED_511.format(address="reader@example.org")).replace(
        b"--b--\n", f"--b\nContent-Type: message/rfc822\n\n{inner}\n--b--\n".encode()
    )
    assert raw.count(b"message/delivery-status") == 2
    assert classify(raw).addresses == ("reader@example.org",)


def test_global_dsn_in_base64():
    body = base64.encodebytes(
        "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: utf-8; Ünï@例え.jp\n"
        "Action: failed\nStatus: 5.1.1\n".encode()
    )
    raw = (
        b'From: m@mx.example\nMIME-Version: 1.0\nContent-Type: multipart/report; boundary="b"\n\n'
        b"--b\nContent-Type: message/global-delivery-status\n"
        b"Content-Transfer-Encoding: base64\n\n" + body + b"--b--\n"
    )
    verdict = classify(raw)
    assert (verdict.kind, verdict.addresses) == ("hard", ("ünï@例え.jp",))


def test_global_dsn_embedded_xtext():
    block = "Final-Recipient: utf-8; d\\x{FC}rer@example.de\nAction: failed\nStatus: 5.1.1\n"
    assert classify(dsn(block)).addresses == ("dürer@example.de",)


def test_truncated_inside_the_status_part_falls_back_without_raising():
    raw = sample("truncated.eml")
    cut = raw[: raw.index(b"Final-Recipient:") + 10]
    assert classify(cut).kind in KINDS


# Step 3: ARF.


def arf(report: str, *, original: str) -> bytes:
    return (
        "From: fbl@fbl.example.com\nTo: fbl-reports@news.example.jp\nSubject: FBL\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\n\n'
        "--f\nContent-Type: text/plain\n\nA complaint.\n\n"
        f"--f\nContent-Type: message/feedback-report\n\n{report}\n"
        f"--f\nContent-Type: message/rfc822\n\n{original}\nBody.\n\n--f--\n"
    ).encode()


ORIGINAL = "From: news@news.example.jp\nTo: redacted@example.com\nSubject: Weekly\n"


def test_arf_with_forged_embedded_token_is_a_complaint_about_nobody():
    raw = sample("arf_complaint.eml", verp_token=forged(verp()), mailto_token=forged(mailto()))
    verdict = classify(raw)
    assert (verdict.kind, verdict.rule) == ("complaint", "arf:abuse")
    assert (verdict.mailing_id, verdict.subscriber_id) == (None, None)


def test_arf_original_mail_from_field():
    report = f"Feedback-Type: Abuse\nVersion: 1\nOriginal-Mail-From: <bounce+{verp(8, 43)}@x.jp>\n"
    verdict = classify(arf(report, original=ORIGINAL))
    assert (verdict.kind, verdict.rule) == ("complaint", "arf:abuse")
    assert (verdict.mailing_id, verdict.subscriber_id) == (8, 43)


def test_arf_embedded_mailto_gives_the_reader_only():
    original = ORIGINAL + f"List-Unsubscribe: <mailto:unsubscribe+{mailto(44, 2)}@x.jp>\n"
    verdict = classify(arf("Feedback-Type: abuse\nVersion: 1\n", original=original))
    assert (verdict.mailing_id, verdict.subscriber_id, verdict.topic_id) == (None, 44, None)


def test_arf_recipients_and_type():
    report = (
        "Feedback-Type: Opt-Out\nVersion: 1\nOriginal-Rcpt-To: <Reader@Example.com>\n"
        "Removal-Recipient: other@example.com\nRemoval-Recipient: redacted@example.com\n"
    )
    verdict = classify(arf(report, original=ORIGINAL))
    assert (verdict.kind, verdict.rule) == ("complaint", "arf:opt-out")
    assert verdict.recipients == (
        Recipient("reader@example.com", "complaint", reason="feedback"),
        Recipient("other@example.com", "complaint", reason="feedback"),
    )
    assert verdict.reason == "feedback"


def test_arf_is_not_read_as_a_bounce(monkeypatch):
    def fail(msg):
        raise AssertionError("flufl.bounce must not see a complaint")

    monkeypatch.setattr(flufl.bounce, "all_failures", fail)
    assert classify(sample("arf_complaint.eml")).kind == "complaint"


# Step 4 and 5: flufl.bounce and embedded tokens.


def test_flufl_guard_with_any_exception(monkeypatch):
    def explode(msg):
        raise RuntimeError("detector bug")

    monkeypatch.setattr(flufl.bounce, "all_failures", explode)
    verdict = classify(reply("Hello"))
    assert (verdict.kind, verdict.rule) == ("quarantined", "error:flufl.bounce:RuntimeError")
    assert verdict.subject == "Hello"


def test_a_failing_step_is_quarantined(monkeypatch):
    def explode(part):
        raise LookupError("bug")

    monkeypatch.setattr(classify_module, "_field_blocks", explode)
    verdict = classify(sample("delayed_dsn.eml"))
    assert (verdict.kind, verdict.rule) == ("quarantined", "error:dsn:LookupError")
    assert (verdict.mailing_id, verdict.subscriber_id) == (7, 42)  # its token was valid


def test_embedded_verp_in_quoted_plain_text():
    body = (
        "Hi. This is the qmail-send program at mail.example.org.\n"
        "I'm afraid I wasn't able to deliver your message.\n\n"
        "<gone@example.org>:\nSorry, no mailbox here by that name.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        f"Return-Path: <bounce+{verp(8, 43)}@news.example.jp>\n"
        f"List-Unsubscribe: <mailto:unsubscribe+{mailto(99, 1)}@news.example.jp>\n"
    )
    verdict = classify(reply("failure notice", body=body))
    assert (verdict.kind, verdict.rule) == ("hard", "flufl.bounce+embedded-token")
    assert verdict.addresses == ("gone@example.org",)
    # VERP names the mailing too, so it wins over the mailto token.
    assert (verdict.mailing_id, verdict.subscriber_id) == (8, 43)


def test_embedded_forged_token_is_ignored():
    raw = sample("postfix_dsn.eml", mailto_token=forged(mailto()))
    verdict = classify(raw)
    assert (verdict.kind, verdict.rule, verdict.subscriber_id) == ("hard", "dsn", None)


def test_envelope_token_wins_over_embedded_one():
    verdict = classify(sample("postfix_dsn.eml"), [f"bounce+{verp(8, 43)}@news.example.jp"])
    assert (verdict.rule, verdict.subscriber_id) == ("dsn", 43)


# Step 6: auto-replies.


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        (["Auto-Submitted: auto-generated"], "auto-reply:auto-submitted"),
        (["Auto-Submitted: auto-replied; owner-email=x@example.com"], "auto-reply:auto-submitted"),
        (["X-Autoreply: yes"], "auto-reply:x-autoreply"),
        (["X-Autorespond: Thank you"], "auto-reply:x-autorespond"),
        (["Precedence: auto_reply"], "auto-reply:precedence"),
    ],
)
def test_auto_reply_headers(headers, rule):
    verdict = classify(reply("Re: Weekly News", *headers), [f"bounce+{verp()}@news.example.jp"])
    assert (verdict.kind, verdict.rule) == ("auto_reply", rule)
    assert (verdict.mailing_id, verdict.subscriber_id) == (MAILING, SUBSCRIBER)


def test_exchange_out_of_office():
    raw = reply("Automatic reply: Weekly News", "X-Auto-Response-Suppress: All")
    assert classify(raw).rule == "auto-reply:x-auto-response-suppress"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Weekly News",
        "AUTOMATIC REPLY: Weekly News",
        "Auto: Weekly News",
        "AutoReply: Weekly News",
        "Vacation reply",
        "Abwesenheitsnotiz: Weekly News",
        "自動返信: 週刊ニュース",
        "【自動応答】週刊ニュース",
        "[不在通知] 週刊ニュース",
        "不在のお知らせ",
        "休暇中です",
        encoded_word("自動返信: 週刊ニュース", "iso2022_jp", "ISO-2022-JP"),
        encoded_word("不在通知", "cp932", "Shift_JIS"),
        encoded_word("休暇のお知らせ", "utf-8", "utf-8"),
        encoded_word("Out of office", "utf-8", "UTF-8"),
    ],
)
def test_auto_reply_subjects(subject):
    verdict = classify(reply(subject, "Auto-Submitted: no"))
    assert (verdict.kind, verdict.rule) == ("auto_reply", "auto-reply:subject")


@pytest.mark.parametrize("subject", ["Re: Weekly News", "About the vacation article", "不具合"])
def test_ordinary_replies_are_unrecognised(subject):
    verdict = classify(reply(subject, "Auto-Submitted: no", "Precedence: bulk"))
    assert (verdict.kind, verdict.rule) == ("unrecognised", "no-rule-matched")


# Never raises.


def test_empty_and_garbage_never_raise():
    generator = random.Random(20260511)
    inputs = [b"", b"\n", b"\x00" * 100, b"From: \n\n", b"Content-Type: multipart/report\n\n--"]
    inputs += [generator.randbytes(generator.randrange(1, 5000)) for _ in range(50)]
    inputs += [b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\n" * 200]
    for raw in inputs:
        verdict = classify(raw)
        assert verdict.kind in KINDS
        assert isinstance(verdict.rule, str) and verdict.rule


def test_every_cut_of_every_sample_never_raises():
    for path in sorted(SAMPLES.glob("*.eml")):
        raw = sample(path.name)
        for end in range(0, len(raw), 97):
            assert classify(raw[:end]).kind in KINDS, (path.name, end)


def test_not_bytes_does_not_raise():
    assert classify(None).kind in KINDS  # type: ignore[arg-type]
    assert classify("From: a@example.com\n\nhi").kind in KINDS  # type: ignore[arg-type]
    raw = bytearray(sample("delayed_dsn.eml"))
    assert classify(raw).kind == "notice"  # type: ignore[arg-type]


def test_undecodable_charset_labels_do_not_raise():
    raw = (
        b"From: x@example.com\nSubject: =?x-no-such-charset?B?gqCCoA==?= "
        b"=?utf-8?B?not-base64!!?=\nMessage-ID: <\xff\xfe@example.com>\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
        b"--b\nContent-Type: text/plain; charset=base64\n\n\x82\xa0\xff\n"
        b"--b\nContent-Type: text/plain; charset*=x-bogus''%82%A0\n\n\x82\xa0\n"
        b"--b\nContent-Type: message/delivery-status; charset=zlib\n\n"
        b"Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n"
        b'Diagnostic-Code: smtp; 550 \x82\xa0\x1b$B$"\n--b--\n'
    )
    verdict = classify(raw)
    assert (verdict.kind, verdict.addresses) == ("hard", ("a@example.org",))


def test_raw_eight_bit_subject_is_sniffed():
    raw = reply("x", body="Hi.\n").replace(b"Subject: x", "Subject: 週刊ニュース".encode("cp932"))
    assert classify(raw).subject == "週刊ニュース"


def test_long_headers_are_clipped():
    raw = reply("Weekly " * 100).replace(b"<reply.1@example.com>", b"<" + b"m" * 400 + b">")
    verdict = classify(raw)
    assert len(verdict.subject) == 200
    assert len(verdict.message_id) == 200


def test_twenty_megabyte_attachment_is_not_decoded(monkeypatch):
    pdf = base64.encodebytes(bytes(range(256)) * (20 * 1024 * 1024 // 256))
    raw = (
        b"From: MAILER-DAEMON@mail.example.net\nTo: bounces@news.example.jp\nSubject: failed\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="outer"\n\n'
        b"--outer\nContent-Type: text/plain\n\nFailed.\n\n"
        b"--outer\nContent-Type: message/delivery-status\n\n"
        b"Reporting-MTA: dns; mail.example.net\n\n"
        + FAILED_511.format(address="big@example.org").encode()
        + b"\n--outer\nContent-Type: message/rfc822\n\n"
        b"From: news@news.example.jp\nTo: big@example.org\n"
        b"List-Unsubscribe: <mailto:unsubscribe+" + mailto().encode() + b"@news.example.jp>\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="inner"\n\n'
        b"--inner\nContent-Type: text/plain\n\nThe report is attached.\n"
        b"--inner\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n"
        + pdf
        + b"--inner--\n\n--outer--\n"
    )
    decoded = []
    get_payload = Message.get_payload

    def spy(self, i=None, decode=False):
        if decode:
            decoded.append(self.get_content_type())
        return get_payload(self, i, decode)

    monkeypatch.setattr(Message, "get_payload", spy)
    verdict = classify(raw)
    assert (verdict.kind, verdict.rule) == ("hard", "dsn+embedded-token")
    assert (verdict.addresses, verdict.status) == (("big@example.org",), "5.1.1")
    assert verdict.subscriber_id == SUBSCRIBER
    assert "application/pdf" not in decoded


def test_deeply_nested_multipart_does_not_raise():
    raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b0\n\n"
    for depth in range(1, 2000):
        raw += b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (depth - 1, depth)
    assert classify(raw).kind in KINDS


# The verdict.


def test_verdict_properties_and_json():
    verdict = Verdict(
        kind="hard",
        rule="dsn",
        recipients=(
            Recipient("a@example.org", "soft", reason="undefined"),
            Recipient("b@example.org", "hard", "5.1.1", "550 no", "user_unknown"),
            Recipient("a@example.org", "hard", "5.2.1", reason="suspended"),
        ),
        mailing_id=7,
        subscriber_id=42,
    )
    assert verdict.addresses == ("a@example.org", "b@example.org")
    assert verdict.status == "5.1.1"
    assert verdict.reason == "user_unknown"  # the first recipient of the verdict's kind
    assert verdict.as_json(file="x.eml") == {
        "kind": "hard",
        "reason": "user_unknown",
        "addresses": ["a@example.org", "b@example.org"],
        "status": "5.1.1",
        "rule": "dsn",
        "mailing": 7,
        "subscriber": 42,
        "recipients": [
            {
                "address": "a@example.org",
                "kind": "soft",
                "status": "",
                "diagnostic": "",
                "reason": "undefined",
            },
            {
                "address": "b@example.org",
                "kind": "hard",
                "status": "5.1.1",
                "diagnostic": "550 no",
                "reason": "user_unknown",
            },
            {
                "address": "a@example.org",
                "kind": "hard",
                "status": "5.2.1",
                "diagnostic": "",
                "reason": "suspended",
            },
        ],
        "file": "x.eml",
    }
    assert Verdict(kind="unrecognised", rule="no-rule-matched").status == ""
    assert Verdict(kind="auto_reply", rule="x", general_reason="vacation").reason == "vacation"


def test_an_auto_reply_without_from_is_still_an_auto_reply():
    # flufl.bounce's Yale detector raises on a message without From: the later steps still run.
    raw = b"To: bounce@example.jp\r\nSubject: Out of Office: news\r\n\r\nAway until Monday.\r\n"
    verdict = classify(raw)
    assert verdict.kind == "auto_reply" and verdict.rule == "auto-reply:subject"


def test_a_plain_bounce_with_a_big_attachment_is_read_without_scanning_it():
    attachment = base64.b64encode(b"\x00" * 3_000_000).decode()
    raw = (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: bounce@example.jp\r\n"
        "Subject: failure notice\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "Hi. This is the qmail-send program at mx.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        "<gone@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{attachment}\r\n--b--\r\n"
    ).encode()
    verdict = classify(raw)
    assert verdict.kind == "hard" and verdict.addresses == ("gone@example.org",)


def test_a_failed_detector_is_not_hidden_by_auto_submitted_alone():
    # Without From:, flufl.bounce raises; a DSN-like mail with only Auto-Submitted stays
    # quarantined for a person rather than being ignored as an auto-reply.
    raw = (
        b"To: bounce@example.jp\r\nSubject: Returned mail\r\nAuto-Submitted: auto-replied\r\n\r\nx"
    )
    verdict = classify(raw)
    assert verdict.kind == "quarantined" and verdict.rule.startswith("error:flufl.bounce")
