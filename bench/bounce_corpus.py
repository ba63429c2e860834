"""How well bounces.classify reads flufl.bounce's corpus of 117 real bounces and our own 136
samples from some 30 MTAs, and the held-out set written apart from the classifier. Prints three
lines:

    .venv/bin/python bench/bounce_corpus.py

flufl: with_addresses: samples whose expected result (flufl.bounce's own test table) names
addresses; right_recipient: of those, how many we attribute to exactly those addresses;
empty_right: of the samples expected to name nobody, how many we attribute to nobody;
right_reason: of the recipients labelled by hand (reasons.json), how many get that reason;
kinds: our verdicts by kind; classify_us: mean time to read one sample.
mta, heldout: right_reason and right_status over the recipients of tests/<folder>/expected.json,
by reason.
"""

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "merumaga" / "bounces" / "tests" / "corpus"
TESTS = ROOT / "merumaga" / "bounces" / "tests"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merumaga.settings")
    os.environ.setdefault("MERUMAGA_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from merumaga.bounces.classify import classify

    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    samples = {path.name: path.read_bytes() for path in sorted(CORPUS.glob("*.txt"))}
    kinds, right, empty_right, wrong = Counter(), 0, 0, []
    started = time.perf_counter()
    verdicts = {name: classify(raw) for name, raw in samples.items()}
    elapsed = time.perf_counter() - started
    for name, verdict in verdicts.items():
        kinds[verdict.kind] += 1
        if name not in expected:
            continue
        want = {address.lower() for address in expected[name]["addresses"]}
        if want and set(verdict.addresses) == want:
            right += 1
        elif not want and not verdict.addresses:
            empty_right += 1
        else:
            wrong.append(name)
    with_addresses = sum(1 for e in expected.values() if e["addresses"])
    labels = json.loads((CORPUS / "reasons.json").read_text(encoding="utf-8"))
    labelled = [(name, a, reason) for name, found in labels.items() for a, reason in found.items()]
    reason_of = {(n, r.address): r.reason for n, v in verdicts.items() for r in v.recipients}
    right_reason = sum(reason_of.get((name, a)) == reason for name, a, reason in labelled)
    print(
        f"flufl: samples={len(samples)} with_expectation={len(expected)} "
        f"with_addresses={with_addresses} right_recipient={right} "
        f"share={right / with_addresses:.1%} empty_expected={len(expected) - with_addresses} "
        f"empty_right={empty_right} differ={','.join(wrong) or '-'} "
        f"labelled={len(labelled)} right_reason={right_reason} "
        f"reason_share={right_reason / len(labelled):.1%} "
        f"kinds={dict(sorted(kinds.items()))} classify_us={elapsed / len(samples) * 1e6:.0f}"
    )
    for folder in ("mta", "heldout"):
        own_samples(folder)


def own_samples(folder: str) -> None:
    from merumaga.bounces.classify import classify
    from merumaga.subscribers.tokens import address_token

    expected = json.loads((TESTS / folder / "expected.json").read_text(encoding="utf-8"))
    token = address_token("bounce", 1, 42).encode()
    total, right, status_right, misses = Counter(), Counter(), 0, []
    for name, sample in expected.items():
        verdict = classify((TESTS / folder / name).read_bytes().replace(b"{{VERP}}", token))
        found = {r.address: r for r in verdict.recipients}
        for want in sample["recipients"]:
            got = found.get(want["address"].lower())
            reason = got.reason if got else verdict.reason
            total[want["reason"]] += 1
            right[want["reason"]] += reason == want["reason"]
            status_right += bool(got) and got.status == (want["status"] or got.status)
            if reason != want["reason"]:
                misses.append(f"{name}:{reason}")
    count = sum(total.values())
    print(
        f"{folder}: samples={len(expected)} mtas={len({s['mta'] for s in expected.values()})} "
        f"recipients={count} right_reason={sum(right.values())} "
        f"share={sum(right.values()) / count:.1%} right_status={status_right} "
        f"by_reason={ {k: f'{right[k]}/{total[k]}' for k in sorted(total)} } "
        f"misses={','.join(misses) or '-'}"
    )


if __name__ == "__main__":
    main()
