"""Benchmark: the local model's labelling on one core against two worker processes.

    nice -n 10 .venv/bin/python bench/bench_label_cores.py [--texts 98304] [--rounds 2]

The local model (taxonomy-only fit) predicts generated texts in `LOCAL_ALONE_CHUNK`-text chunks
(as `labels` does with no LLM), in alternating rounds in this one process:
- "one core": a plain loop of `LocalModel.predict` over the chunks;
- "two workers": the same chunks through loky worker processes (joblib's), each of which loaded
  the model once, before timing (warmed: the word vectors are read at the first prediction).
Per round: texts/s of each, the ratio, and the peak RSS of this process plus its workers.
Both are measured in the same minutes, so a shared machine's load hits both alike.

No asserts: it prints figures for people to read.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import label_workers
import psutil
from joblib.externals.loky import get_reusable_executor

from esk_pipeline.pipeline.labeler._cascade import LOCAL_ALONE_CHUNK
from esk_pipeline.pipeline.local_model import LocalModel
from esk_pipeline.pipeline.taxonomy import Taxonomy
from esk_pipeline.sample_data import generate_logs

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "data" / "taxonomy.yaml"
_MB = 2**20


class _PeakRss:
    """Peak of this process's RSS plus its children's, sampled every 0.1 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / _MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=12 * LOCAL_ALONE_CHUNK)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    taxonomy = Taxonomy.load(TAXONOMY_PATH)
    texts = generate_logs(taxonomy, n_rows=args.texts, seed=3)["text"].tolist()
    chunks = [texts[i : i + LOCAL_ALONE_CHUNK] for i in range(0, len(texts), LOCAL_ALONE_CHUNK)]
    model = LocalModel().fit(taxonomy)
    model.predict(chunks[0][:10])  # the word vectors, read once
    with tempfile.TemporaryDirectory() as folder:
        path = str(model.save(Path(folder) / "model.joblib"))
        executor = get_reusable_executor(
            max_workers=args.workers, initializer=label_workers.load, initargs=(path,)
        )
        # Warm every worker: each loads the model and reads the word vectors once.
        list(executor.map(label_workers.predict, [chunks[0][:10]] * args.workers * 4))
        print(
            f"{len(texts):,} texts in {len(chunks)} chunks of {LOCAL_ALONE_CHUNK:,}; "
            f"{args.workers} workers; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  {'round':>5s} {'how':12s} {'texts/s':>9s} {'peak MB':>8s}")
        for round_ in range(1, args.rounds + 1):
            figures = {}
            for how in ("one core", "two workers"):
                rss = _PeakRss()
                started = time.perf_counter()
                if how == "one core":
                    done = [model.predict(chunk) for chunk in chunks]
                else:
                    done = list(executor.map(label_workers.predict, chunks))
                seconds = time.perf_counter() - started
                peak = rss.stop()
                assert sum(map(len, done)) == len(texts)
                figures[how] = len(texts) / seconds
                print(f"  {round_:5d} {how:12s} {figures[how]:9,.0f} {peak:8.0f}")
            print(
                f"        two workers / one core = "
                f"{figures['two workers'] / figures['one core']:.2f} "
                f"(load average {os.getloadavg()[0]:.1f})"
            )
        executor.shutdown(wait=True)


if __name__ == "__main__":
    main()
