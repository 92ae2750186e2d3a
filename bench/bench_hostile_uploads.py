"""The API's memory across hostile uploads: resident set size before, during and after.

    .venv/bin/python bench/bench_hostile_uploads.py [--uploads 50] [--cases xlsx_bomb,wide_csv,...]

Starts the real server (uvicorn, embedded ClickHouse, a temporary data folder), makes one
ordinary upload (so every lazily built part exists), reads the server process's RSS, then
sends the hostile uploads one after another, cycling through the cases, sampling the RSS every
50 ms, and prints each case's answers and the RSS before, at peak and after. The uploads' ETL
runs in limited worker processes, so the server's own RSS should stay flat.

No asserts: it prints figures. Runs against whatever `esk_pipeline` the interpreter imports.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-maintainer-token-0123456789"


def _xlsx_bomb(string_bytes: int) -> bytes:
    """A small workbook whose one shared string is `string_bytes` of one letter."""
    sys.path.insert(0, str(ROOT))
    from esk_pipeline_tests.pipeline_tests.test_etl_hostile import _xlsx_with_big_string

    with tempfile.TemporaryDirectory() as folder:
        return _xlsx_with_big_string(Path(folder) / "bomb.xlsx", string_bytes).read_bytes()


def _cases() -> dict[str, tuple[str, bytes]]:
    return {
        "xlsx_bomb_400mb": ("bomb.xlsx", _xlsx_bomb(400 << 20)),
        "csv_1m_same_columns": (
            "wide.csv",
            ("text" + ";a" * 1_000_000 + "\nпривет мир" + ";" * 1_000_000).encode(),
        ),
        "json_100k_deep": ("deep.json", ("[" * 100_000 + "]" * 100_000).encode()),
        "json_5000_digits": (
            "n.json",
            ('[{"text": "привет мир", "n": ' + "7" * 5000 + "}]").encode(),
        ),
        "csv_40k_columns_slow": (
            "slow.csv",
            ("text" + ";a" * 39_999 + "\nпривет мир" + ";x" * 39_999).encode(),
        ),
    }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--cases", default="", help="comma-separated subset of the cases")
    args = parser.parse_args()
    cases = _cases()
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
    folder = Path(tempfile.mkdtemp(prefix="esk-bench-hostile-"))
    port = _free_port()
    env = {
        **os.environ,
        "APP_DATA_DIR": str(folder),
        "APP_TAXONOMY_PATH": str(ROOT / "data" / "taxonomy.yaml"),
        "APP_API_TOKENS": json.dumps({"bench": {"token": TOKEN, "role": "maintainer"}}),
        "CLICKHOUSE_EMBEDDED_PATH": str(folder / "clickhouse"),
        "DATA_STORAGE_STORAGE_DIR": str(folder / "storage"),
        "CACHE_DIR": str(folder / "cache"),
        "APP_UPLOAD_CPU_SECONDS": "2",
        "APP_UPLOAD_MEMORY_MB": "1024",
        "ETL_MAX_COLUMNS": "50000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "esk_pipeline.api:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            ok = client.post(
                "/api/ingest/upload",
                files={"file": ("ok.csv", io.BytesIO("text\nнет горячей воды\n".encode()))},
            )
            print(f"warm-up upload: {ok.status_code}")
            before = _rss_mb(server.pid)
            peak, stop = [before], threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak.append(_rss_mb(server.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            answers: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
            seconds: dict[str, float] = collections.defaultdict(float)
            names = list(cases)
            for i in range(args.uploads):
                case = names[i % len(names)]
                file_name, data = cases[case]
                start = time.perf_counter()
                response = client.post(
                    "/api/ingest/upload", files={"file": (file_name, io.BytesIO(data))}
                )
                seconds[case] += time.perf_counter() - start
                answers[case][f"{response.status_code} {response.json().get('error', '')}"] += 1
            stop.set()
            sampler.join()
            after = _rss_mb(server.pid)
        print(f"\n{args.uploads} hostile uploads\n")
        print("| case | answers | mean seconds |")
        print("|---|---|---:|")
        for case in names:
            count = sum(answers[case].values())
            shown = ", ".join(f"{n}x {a}" for a, n in answers[case].items())
            print(f"| {case} | {shown} | {seconds[case] / max(count, 1):.2f} |")
        print(
            f"\nserver RSS: before {before:.0f} MB, peak {max(peak):.0f} MB, after {after:.0f} MB "
            f"({after - before:+.0f} MB)"
        )
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
