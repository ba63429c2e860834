"""Write expected.json from flufl.bounce's tests/test_detectors.py (its DETECTORS table).

    .venv/bin/python merumaga/bounces/tests/corpus/transcribe.py \\
        /tmp/fb/flufl_bounce-6.0.0/tests/test_detectors.py

The table is read as data (ast.literal_eval), never imported. A sample listed under two detectors
gets the union of their addresses: classify() runs all of flufl.bounce, not one detector.
"""

import ast
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def transcribe(source: str) -> dict:
    expected: dict[str, dict] = {}
    for detector, filename, addresses, is_temporary in _rows(source):
        entry = expected.setdefault(
            filename, {"addresses": [], "temporary": is_temporary, "detectors": []}
        )
        for address in addresses:
            text = address.decode("ascii")
            if text not in entry["addresses"]:
                entry["addresses"].append(text)
        entry["detectors"].append(detector)
        # A sample is temporary only if every row listing it says so.
        entry["temporary"] = entry["temporary"] and is_temporary
    return dict(sorted(expected.items()))


def main() -> None:
    source = Path(sys.argv[1]).read_text(encoding="utf-8")
    expected = transcribe(source)
    rows = len(_rows(source))
    missing = [name for name in expected if not (HERE / name).exists()]
    if missing:
        raise SystemExit(f"Listed but not in the corpus: {missing}")
    (HERE / "expected.json").write_text(
        json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{rows} rows, {len(expected)} samples with an expectation")


def _rows(source: str) -> list[tuple]:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DETECTORS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise SystemExit("No DETECTORS table")


if __name__ == "__main__":
    main()
