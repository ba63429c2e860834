"""classify() against flufl.bounce's 117 real bounces and the results its own tests expect.

expected.json transcribes the DETECTORS table of flufl.bounce 6.0.0's tests/test_detectors.py
(see corpus/README.md); samples that table does not list have no expectation.
"""

import json
from pathlib import Path

import pytest

from merumaga.bounces.classify import KINDS, classify

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
SAMPLES = sorted(path.name for path in CORPUS.glob("*.txt"))

# Where our reading differs from the table, each checked by reading the sample: exact addresses.
DISAGREEMENTS = {
    # The table's [] is for the SimpleMatch detector alone. The sample is an Exim RFC 3464 DSN
    # (Action: failed, Status: 5.0.0, Final-Recipient: rfc822;david...@gmail.com), which
    # flufl.bounce's own DSN detector and all_failures() report too.
    "simple_42.txt": ("hard", {"david...@gmail.com"}),
}
# Same addresses, other kind than the table's is_temporary flag says.
KIND_DISAGREEMENTS = {
    # Action: failed with Status: 4.4.7 (an X.400 gateway gave up after the maximum time): a
    # failed 4.x.x is soft by our rules; flufl.bounce counts every "failed" as permanent.
    "dsn_02.txt": "soft",
}
# Measured: 114 of the 115 samples with an expectation (99.1 %); the one other is simple_42.
MINIMUM_SHARE = 114 / 115


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
    return verdict.kind in ("hard", "soft", "complaint") and set(verdict.addresses) == expected


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
        assert verdict.kind in ("hard", "soft", "complaint")
        assert set(verdict.addresses) == expected
    elif verdict.kind not in ("unrecognised", "quarantined", "auto_reply"):
        assert verdict.addresses == ()


@pytest.mark.parametrize("name", sorted(DISAGREEMENTS))
def test_disagreements(name):
    kind, addresses = DISAGREEMENTS[name]
    assert not agrees(name)
    verdict = verdict_for(name)
    assert (verdict.kind, set(verdict.addresses)) == (kind, addresses)


@pytest.mark.parametrize(
    "name", sorted(name for name, expected in EXPECTED.items() if expected["addresses"])
)
def test_kind_follows_temporary_flag(name):
    kind = "soft" if EXPECTED[name]["temporary"] else "hard"
    assert verdict_for(name).kind == KIND_DISAGREEMENTS.get(name, kind)


def test_share_attributed_to_exactly_the_expected_addresses():
    agreeing = sum(agrees(name) for name in EXPECTED)
    assert agreeing / len(EXPECTED) >= MINIMUM_SHARE
