"""The API's memory across hostile uploads and a large valid one: RSS before, at peak, after.

    .venv/bin/python bench/bench_hostile_uploads.py [--uploads 50] [--cases xlsx_bomb,wide_csv,...]
        [--valid-rows 300000]

Starts the real server (uvicorn, embedded ClickHouse, a temporary data folder), makes one
ordinary upload (so every lazily built part exists), reads the server process's RSS, then
sends the hostile uploads one after another, cycling through the cases, sampling the RSS every
50 ms, and prints each case's answers and the RSS before, at peak and after. The uploads' ETL
runs in limited worker processes, so the server's own RSS should stay flat.

Then a second server with the default CPU-time and memory limits takes a valid upload of
`--valid-rows` sample rows (CSV), and the same file again (a replay). For each it prints the
server's RSS before, at peak and after, beside the peak of its helper processes (the ETL
worker and the embedded ClickHouse helper, which do hold the rows): the reference for what
the server would cost if it held them itself.

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


def _valid_csv(rows: int) -> bytes:
    """`rows` realistic sample requests over a week, as a CSV export would hold them."""
    sys.path.insert(0, str(ROOT))
    from esk_pipeline.pipeline.taxonomy import Taxonomy
    from esk_pipeline.sample_data import generate_logs

    logs = generate_logs(Taxonomy.load(ROOT / "data" / "taxonomy.yaml"), n_rows=rows, seed=11)
    return logs.drop(columns=["true_domain"]).to_csv(index=False).encode()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process has ended
        return 0.0
    return 0.0


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class RssSampler:
    """Samples a process's RSS, and the largest RSS among its descendants, every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = _rss_mb(pid)
        self.peak = self.before
        self.helper_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = _rss_mb(self.pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb(self.pid))
            helpers = [_rss_mb(child) for child in _descendants(self.pid)]
            self.helper_peak = max([self.helper_peak, *helpers])
            time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(folder: Path, **limits: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "APP_DATA_DIR": str(folder),
        "APP_TAXONOMY_PATH": str(ROOT / "data" / "taxonomy.yaml"),
        "APP_API_TOKENS": json.dumps({"bench": {"token": TOKEN, "role": "maintainer"}}),
        "CLICKHOUSE_EMBEDDED_PATH": str(folder / "clickhouse"),
        "DATA_STORAGE_STORAGE_DIR": str(folder / "storage"),
        "CACHE_DIR": str(folder / "cache"),
        **limits,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "esk_pipeline.api:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, base


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--cases", default="", help="comma-separated subset of the cases")
    parser.add_argument("--valid-rows", type=int, default=300_000)
    args = parser.parse_args()
    if args.uploads:
        _hostile(args.uploads, args.cases)
    if args.valid_rows:
        _valid(args.valid_rows)


def _hostile(uploads: int, case_names: str) -> None:
    cases = _cases()
    if case_names:
        cases = {k: v for k, v in cases.items() if k in case_names.split(",")}
    folder = Path(tempfile.mkdtemp(prefix="esk-bench-hostile-"))
    server, base = _start_server(
        folder,
        APP_UPLOAD_CPU_SECONDS="2",
        APP_UPLOAD_MEMORY_MB="1024",
        ETL_MAX_COLUMNS="50000",
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            ok = client.post(
                "/api/ingest/upload",
                files={"file": ("ok.csv", io.BytesIO("text\nнет горячей воды\n".encode()))},
            )
            print(f"warm-up upload: {ok.status_code}")
            answers: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
            seconds: dict[str, float] = collections.defaultdict(float)
            names = list(cases)
            with RssSampler(server.pid) as rss:
                for i in range(uploads):
                    case = names[i % len(names)]
                    file_name, data = cases[case]
                    start = time.perf_counter()
                    response = client.post(
                        "/api/ingest/upload", files={"file": (file_name, io.BytesIO(data))}
                    )
                    seconds[case] += time.perf_counter() - start
                    answer = f"{response.status_code} {response.json().get('error', '')}"
                    answers[case][answer] += 1
        print(f"\n{uploads} hostile uploads\n")
        print("| case | answers | mean seconds |")
        print("|---|---|---:|")
        for case in names:
            count = sum(answers[case].values())
            shown = ", ".join(f"{n}x {a}" for a, n in answers[case].items())
            print(f"| {case} | {shown} | {seconds[case] / max(count, 1):.2f} |")
        print(
            f"\nserver RSS: before {rss.before:.0f} MB, peak {rss.peak:.0f} MB, "
            f"after {rss.after:.0f} MB ({rss.after - rss.before:+.0f} MB)"
        )
    finally:
        _stop(server)


def _valid(rows: int) -> None:
    data = _valid_csv(rows)
    folder = Path(tempfile.mkdtemp(prefix="esk-bench-valid-"))
    # The default CPU-time and memory limits; the size limit fits the file.
    server, base = _start_server(folder, APP_MAX_UPLOAD_MB=str(len(data) // 2**20 + 10))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    lines = []
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            ok = client.post(
                "/api/ingest/upload",
                files={"file": ("ok.csv", io.BytesIO("text\nнет горячей воды\n".encode()))},
            )
            print(f"\nwarm-up upload: {ok.status_code}")
            for label in ("first upload", "the same file again"):
                with RssSampler(server.pid) as rss:
                    start = time.perf_counter()
                    response = client.post(
                        "/api/ingest/upload", files={"file": ("valid.csv", io.BytesIO(data))}
                    )
                    seconds = time.perf_counter() - start
                body = response.json()
                answer = f"{response.status_code}, {body.get('rows_inserted')} rows" + (
                    ", replayed" if response.headers.get("Idempotent-Replayed") else ""
                )
                lines.append(
                    f"| {label} | {answer} | {seconds:.1f} | {rss.before:.0f} | {rss.peak:.0f} "
                    f"| {rss.after:.0f} | {rss.after - rss.before:+.0f} | {rss.helper_peak:.0f} |"
                )
    finally:
        _stop(server)
    print(f"\na valid upload: {rows:,} sample rows, {len(data) / 2**20:.1f} MB of CSV\n")
    print(
        "| upload | answer | seconds | server RSS before MB | peak MB | after MB | after - before "
        "| largest helper process peak MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
