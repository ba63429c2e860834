"""What DKIM signing costs in the worker: dkimpy signatures per second (2048-bit RSA).

.venv/bin/python bench/dkim.py
"""

import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dkim

from merumaga import mime
from merumaga.delivery.dkim import SIGNED_HEADERS


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        key_file = Path(folder) / "key.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key_file), "2048"], check=True, capture_output=True
        )
        key = key_file.read_bytes()
    data = mime.build_message(
        charset="utf-8",
        from_name="研究所",
        from_address="news@example.jp",
        to_address="reader@example.jp",
        subject="週報",
        text="本文。" * 800,
        html="<p>" + "本文。" * 800 + "</p>",
        headers=[],
        message_id="<1@example.jp>",
        date=datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
    )
    count = 200
    started = time.perf_counter()
    for _ in range(count):
        dkim.sign(
            data,
            b"mm",
            b"example.jp",
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
    elapsed = time.perf_counter() - started
    print(
        f"key_bits=2048 message_bytes={len(data)} signs_per_s={count / elapsed:.0f} "
        f"us_per_sign={elapsed / count * 1e6:.0f}"
    )


if __name__ == "__main__":
    main()
