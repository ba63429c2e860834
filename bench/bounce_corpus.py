"""How well bounces.classify reads flufl.bounce's corpus of 117 real bounces. Prints one line:

    .venv/bin/python bench/bounce_corpus.py

with_addresses: samples whose expected result (flufl.bounce's own test table) names addresses;
right_recipient: of those, how many we attribute to exactly those addresses; empty_right: of the
samples expected to name nobody, how many we attribute to nobody; kinds: our verdicts by kind;
classify_us: mean time to read one sample.
"""

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "merumaga" / "bounces" / "tests" / "corpus"


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
    print(
        f"samples={len(samples)} with_expectation={len(expected)} "
        f"with_addresses={with_addresses} right_recipient={right} "
        f"share={right / with_addresses:.1%} empty_expected={len(expected) - with_addresses} "
        f"empty_right={empty_right} differ={','.join(wrong) or '-'} "
        f"kinds={dict(sorted(kinds.items()))} classify_us={elapsed / len(samples) * 1e6:.0f}"
    )


if __name__ == "__main__":
    main()
