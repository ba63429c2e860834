"""Time `merumaga import-subscribers` on a synthetic CSV (Japanese names, mixed domains, Shift_JIS).

Prints one line of key=value figures. Runs against a fresh SQLite database in a temporary data dir,
or against DATABASE_URL if that is set (use a scratch database: the bench adds its readers there).

    .venv/bin/python bench/import_subscribers.py --rows 100000
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
]
GIVEN = ["陽菜", "蓮", "結衣", "湊", "葵", "悠真", "凛", "大翔", "美咲", "健太", "さくら", "翔"]
DOMAINS = ["example.jp", "example.co.jp", "example.ne.jp", "example.com", "example.org"]
TOPICS = ["weekly", "articles", "reports", "events"]


def write_csv(path: Path, rows: int, encoding: str) -> None:
    random.seed(rows)
    lines = ["email,name,organisation,topics"]
    for n in range(rows):
        topics = ";".join(random.sample(TOPICS, random.randint(1, 4)))
        name = f"{random.choice(FAMILY)} {random.choice(GIVEN)}"
        lines.append(
            f"reader{n}@{DOMAINS[n % len(DOMAINS)]},{name},株式会社サンプル{n % 97},{topics}"
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--encoding", default="cp932", help="cp932 (Shift_JIS) or utf-8")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MERUMAGA_DATA_DIR": tmp}
        merumaga = [sys.executable, "-m", "merumaga.cli"]
        subprocess.run([*merumaga, "migrate", "-v0"], env=env, check=True)
        csv_path = Path(tmp) / "readers.csv"
        write_csv(csv_path, args.rows, args.encoding)
        started = time.perf_counter()
        result = subprocess.run(
            [*merumaga, "import-subscribers", str(csv_path), "--source", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    backend = "postgres" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    print(
        f"backend={backend} rows={args.rows} encoding={args.encoding} seconds={seconds:.1f} "
        f"rows_per_s={args.rows / seconds:.0f} peak_rss_mb={peak_kb / 1024:.0f} "
        f"{result.stdout.strip()}"
    )


if __name__ == "__main__":
    main()
