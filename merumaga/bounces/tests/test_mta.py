"""classify() against our own bounces from some 30 MTAs and mail services (mta/README.md): each
recipient's reason and status, and what the platform does with them."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from merumaga.bounces import reasons
from merumaga.bounces.classify import classify, kind_of
from merumaga.subscribers.tokens import address_token

MTA = Path(__file__).parent / "mta"
EXPECTED: dict[str, dict] = json.loads((MTA / "expected.json").read_text(encoding="utf-8"))
RECIPIENTS = sorted(
    (name, index) for name, sample in EXPECTED.items() for index in range(len(sample["recipients"]))
)
# Measured: all 143 recipients of the 136 samples.
MINIMUM_SHARE = 143 / 143


def raw(name: str) -> bytes:
    token = address_token("bounce", 1, 42).encode()
    return (MTA / name).read_bytes().replace(b"{{VERP}}", token)


def read(name: str, index: int):
    """The verdict, and the recipient it gives for the expected one: by address, or the one
    the VERP token names when the bounce names nobody (ours go to one reader each)."""
    verdict = classify(raw(name))
    address = EXPECTED[name]["recipients"][index]["address"].lower()
    found = [r for r in verdict.recipients if r.address == address]
    return verdict, (found[0] if found else None)


def test_every_sample_has_an_expectation():
    assert sorted(EXPECTED) == sorted(path.name for path in MTA.glob("*.eml"))
    assert len(EXPECTED) >= 130
    assert {r["reason"] for s in EXPECTED.values() for r in s["recipients"]} == set(reasons.REASONS)
    assert len({sample["mta"] for sample in EXPECTED.values()}) >= 30


@pytest.mark.parametrize(("name", "index"), RECIPIENTS)
def test_reason_and_status_of_each_recipient(name, index):
    expected = EXPECTED[name]["recipients"][index]
    verdict, recipient = read(name, index)
    if expected["reason"] in ("vacation", "feedback"):
        # An auto-reply or a complaint: about the message's reader, not a recipient of a bounce.
        assert verdict.reason == expected["reason"]
        assert (verdict.mailing_id, verdict.subscriber_id) == (1, 42)
        return
    assert recipient is not None, [r.address for r in verdict.recipients]
    assert (recipient.reason, recipient.kind) == (expected["reason"], kind_of(expected["reason"]))
    if expected["status"]:
        assert recipient.status == expected["status"]
    else:  # none in the message: filled in from the reason
        assert recipient.status == reasons.default_status(expected["reason"])
    assert (verdict.mailing_id, verdict.subscriber_id) == (1, 42)


def test_share_of_recipients_read_right():
    right = 0
    for name, index in RECIPIENTS:
        verdict, recipient = read(name, index)
        expected = EXPECTED[name]["recipients"][index]["reason"]
        right += (recipient.reason if recipient else verdict.reason) == expected
    assert right / len(RECIPIENTS) >= MINIMUM_SHARE


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("postfix_user_unknown_1.eml", "hard"),  # gone: suppressed
        ("exim_mailbox_full_1.eml", "soft"),  # temporary: scored
        ("postfix_blocked_1.eml", "sender"),  # ours: never against the reader
        ("office365_auth_failure_1.eml", "sender"),
        ("postfix_filtered_1.eml", "sender"),  # docomo's filter after DATA, not an unknown user
        ("postfix_user_unknown_2.eml", "hard"),  # docomo's unknown user at RCPT
        ("postfix_delayed_1.eml", "notice"),  # recorded only
        ("opensmtpd_delivered_1.eml", "notice"),
    ],
)
def test_the_kind_says_what_the_platform_does(name, kind):
    assert classify(raw(name)).kind == kind


def test_a_bounce_with_recipients_of_different_reasons(tmp_path):
    # The command reports each recipient with its own reason.
    path = tmp_path / "two.eml"
    path.write_bytes(raw("sendmail_user_unknown_2.eml"))
    out = StringIO()
    call_command("bounces", "classify", str(path), stdout=out)
    [line] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (line["kind"], line["reason"], line["rule"]) == ("hard", "user_unknown", "dsn")
    assert [(r["address"], r["reason"], r["kind"]) for r in line["recipients"]] == [
        ("nana.sample612@docomo.ne.jp", "user_unknown", "hard"),
        ("kaito.sample613@docomo.ne.jp", "filtered", "sender"),
    ]
    assert (line["mailing"], line["subscriber"]) == (1, 42)
