"""classify() against flufl.bounce's 117 real bounces and the results its own tests expect.

expected.json transcribes the DETECTORS table of flufl.bounce 6.0.0's tests/test_detectors.py
(see corpus/README.md); samples that table does not list have no expectation. reasons.json is
our reading of each failed recipient's reason, labelled by hand from the message alone.
"""

import json
from pathlib import Path

import pytest

from merumaga import reasons
from merumaga.bounces.classify import KINDS, classify, kind_of

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
REASONS: dict[str, dict[str, str]] = json.loads((CORPUS / "reasons.json").read_text("utf-8"))
SAMPLES = sorted(path.name for path in CORPUS.glob("*.txt"))

# Where our reading differs from the table, each checked by reading the sample: exact addresses.
DISAGREEMENTS = {
    # The table's [] is for the SimpleMatch detector alone. The sample is an Exim RFC 3464 DSN
    # (Action: failed, Status: 5.0.0, Final-Recipient: rfc822;david...@gmail.com), which
    # flufl.bounce's own DSN detector and all_failures() report too.
    # Gmail refused it as unsolicited mail: our problem, never counted against the reader.
    "simple_42.txt": ("sender", {"david...@gmail.com"}),
}
# Measured: 114 of the 115 samples with an expectation (99.1 %); the one other is simple_42.
MINIMUM_SHARE = 114 / 115
# Where our reading of a reason differs from the label, each checked by reading the sample.
REASON_DISAGREEMENTS = {
    # A DSN forwarded inside a message/rfc822: the inner Status: 5.1.1 is not read (a bounced
    # original is never read as a bounce), and the outer text gives no reason.
    ("dsn_15.txt", "userx@example.com"): "undefined",
    # Site-specific directory lookups that say "no match" in their own words.
    ("llnl_01.txt", "user1@example.gov"): "undefined",
    ("yale_01.txt", "userx@cs.yale.edu"): "undefined",
    ("yale_01.txt", "userx@yale.edu"): "undefined",
    # "Temporary server error" with status 4.4.4 (unable to route): the status decides.
    ("simple_44.txt", "user@example.com"): "network_error",
}
LABELLED = sorted((name, address) for name, labels in REASONS.items() for address in labels)
# Measured: 128 of the 133 labelled recipients (96.2 %), the five above the others.
MINIMUM_REASON_SHARE = 128 / 133


def verdict_for(name: str):
    return classify((CORPUS / name).read_bytes())


def agrees(name: str) -> bool:
    verdict = verdict_for(name)
    expected = {address.lower() for address in EXPECTED[name]["addresses"]}
    if not expected:
        return not verdict.addresses or verdict.kind in (
            "unrecognised",
            "quarantined",
            "auto_reply",
        )
    failed = ("hard", "soft", "sender", "notice", "complaint")
    return verdict.kind in failed and set(verdict.addresses) == expected


def test_corpus_is_complete():
    assert len(SAMPLES) == 117
    assert len(EXPECTED) == 115
    assert set(EXPECTED) <= set(SAMPLES)
    assert set(SAMPLES) - set(EXPECTED) == {"bounce_01.txt", "dumbass_01.txt"}
    assert (CORPUS / "LICENSE").read_text().startswith("Copyright 2004-2026 Barry Warsaw")


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_classified(name):
    assert verdict_for(name).kind in KINDS


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(DISAGREEMENTS)))
def test_expected_addresses(name):
    verdict = verdict_for(name)
    expected = {address.lower() for address in EXPECTED[name]["addresses"]}
    if expected:
        assert verdict.kind in ("hard", "soft", "sender", "notice", "complaint")
        assert set(verdict.addresses) == expected
    elif verdict.kind not in ("unrecognised", "quarantined", "auto_reply"):
        assert verdict.addresses == ()


@pytest.mark.parametrize("name", sorted(DISAGREEMENTS))
def test_disagreements(name):
    kind, addresses = DISAGREEMENTS[name]
    assert not agrees(name)
    verdict = verdict_for(name)
    assert (verdict.kind, set(verdict.addresses)) == (kind, addresses)


def test_every_sample_with_failed_addresses_is_labelled():
    with_addresses = {name for name, expected in EXPECTED.items() if expected["addresses"]}
    assert set(REASONS) == with_addresses - set(DISAGREEMENTS)
    assert {reason for labels in REASONS.values() for reason in labels.values()} <= set(
        reasons.REASONS
    )


@pytest.mark.parametrize(("name", "address"), LABELLED)
def test_reason_of_each_labelled_recipient(name, address):
    expected = REASON_DISAGREEMENTS.get((name, address), REASONS[name][address])
    [recipient] = [r for r in verdict_for(name).recipients if r.address == address]
    assert recipient.reason == expected
    assert recipient.kind == kind_of(expected)


def test_share_of_labelled_reasons_read_right():
    right = sum(
        recipient.reason == REASONS[name][recipient.address]
        for name in REASONS
        for recipient in verdict_for(name).recipients
        if recipient.address in REASONS[name]
    )
    assert right / len(LABELLED) >= MINIMUM_REASON_SHARE


def test_share_attributed_to_exactly_the_expected_addresses():
    agreeing = sum(agrees(name) for name in EXPECTED)
    assert agreeing / len(EXPECTED) >= MINIMUM_SHARE
