"""The embedded ClickHouse engine (chdb), hosted in a helper process that comes and goes.

Two facts about chdb shape this module:
- one engine per database folder across all processes: while a process has the folder open,
  every other process fails to open it;
- every open and close of the engine keeps about 1 MB of native memory that is never given
  back (300 open/query/close cycles in one process: +489 MB of RSS).

So a long-lived process (the API, Dagster's code server running sensors) can neither keep the
folder open for good nor open it per call. Here the engine lives in a helper child process:
the parent holds the cross-process file lock exactly while its child has the folder open; the
child closes the folder after `hold_seconds` without a call, or as soon as another process
waits for it (waiters leave a marker file next to the lock), and exits after
`child_idle_seconds` without a call or after `opens_per_child` opens. Its exit gives every byte
of the engine's memory back to the system, so the parent's memory stays flat for good.

The protocol is pickled frames over the child's stdin/stdout; only our own child is on the
other end. Every SQL value stays a bound parameter, exactly as with a server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from filelock import FileLock, Timeout

__all__ = ["EmbeddedEngine", "EmbeddedEngineError", "EmbeddedQueryError"]

_HEADER = struct.Struct("!Q")
_POLL_SECONDS = 0.2
_engines: dict[tuple[int, Path], EmbeddedEngine] = {}
_engines_lock = threading.Lock()


class EmbeddedEngineError(RuntimeError):
    """The embedded engine failed or stayed busy; the message says which."""


class EmbeddedQueryError(EmbeddedEngineError):
    """ClickHouse rejected a statement (the engine itself is fine)."""


class EmbeddedEngine:
    """This process's access to one embedded database folder, through one helper process."""

    def __init__(
        self,
        path: Path,
        *,
        hold_seconds: float = 2.0,
        child_idle_seconds: float = 30.0,
        opens_per_child: int = 50,
    ) -> None:
        self.path = path
        self.hold_seconds = hold_seconds
        self.child_idle_seconds = child_idle_seconds
        self.opens_per_child = opens_per_child
        self._lock = FileLock(f"{path}.lock", thread_local=False)
        self._calls = threading.Lock()  # the child answers one call at a time
        self._child: subprocess.Popen[bytes] | None = None
        self._opens_in_child = 0
        self._last_call = 0.0
        self.children_started = 0

    @classmethod
    def for_path(cls, path: Path) -> EmbeddedEngine:
        """The process-wide engine of `path` (one per folder and process id)."""
        key = (os.getpid(), path.resolve())
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = cls(key[1])
        return engine

    @property
    def holds_folder(self) -> bool:
        """True while this process's helper has the folder open (and holds the lock)."""
        return self._lock.is_locked

    def call(self, method: str, *args: Any, lock_timeout: float = 300.0, **kwargs: Any) -> Any:
        """Run one client method (command, query_rows, query_df, insert_df, insert_parquet)."""
        with self._calls:
            if not self.holds_folder:
                self._open_folder(lock_timeout)
            status, value = self._ask(method, *args, **kwargs)
            self._last_call = time.monotonic()
            if self._others_waiting():
                self._close_folder()
        if status == "ok":
            return value
        if status == "query_error":
            raise EmbeddedQueryError(value)
        raise EmbeddedEngineError(value)

    def close(self) -> None:
        """Release the folder and end the child (idempotent)."""
        with self._calls:
            self._stop_child()

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        try:
            _send(child.stdin, (method, args, kwargs))
            return _receive(child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._stop_child()
            raise EmbeddedEngineError(
                f"the embedded ClickHouse helper for {self.path} stopped: {exc or 'no answer'}"
            ) from exc

    def _open_folder(self, lock_timeout: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        marker = self.path.with_name(f"{self.path.name}.waiting.{os.getpid()}")
        marker.touch()
        try:
            self._lock.acquire(timeout=lock_timeout)
        except Timeout as exc:
            raise EmbeddedEngineError(
                f"embedded ClickHouse at {self.path} stayed busy for {lock_timeout:.0f} s"
            ) from exc
        finally:
            marker.unlink(missing_ok=True)
        try:
            if self._child is not None and self._opens_in_child >= self.opens_per_child:
                self._stop_child()  # each open keeps ~1 MB in the child: start a fresh one
            if self._child is None:
                self._start_child()
            status, value = self._ask("open", str(self.path))
            if status != "ok":
                raise EmbeddedEngineError(value)
            self._opens_in_child += 1
        except BaseException:
            self._lock.release(force=True)
            raise

    def _close_folder(self) -> None:
        if not self.holds_folder:
            return
        try:
            if self._child is not None:
                self._ask("close")
        finally:
            self._lock.release(force=True)

    def _start_child(self) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._opens_in_child = 0
        self.children_started += 1
        threading.Thread(target=self._watch, args=(self._child,), daemon=True).start()

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            with contextlib.suppress(OSError):
                child.stdin.close()  # EOF: the child closes the engine and exits
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            with contextlib.suppress(OSError):
                child.stdout.close()
        if self.holds_folder:
            self._lock.release(force=True)

    def _watch(self, child: subprocess.Popen[bytes]) -> None:
        """Hand the folder over when idle or wanted elsewhere; end the child when idle."""
        while self._child is child:
            time.sleep(_POLL_SECONDS)
            if not self._calls.acquire(blocking=False):
                continue  # a call is running: it checks for waiters when it ends
            try:
                idle = time.monotonic() - self._last_call
                if self._child is not child:
                    break
                if self.holds_folder and (idle > self.hold_seconds or self._others_waiting()):
                    self._close_folder()
                elif not self.holds_folder and idle > self.child_idle_seconds:
                    self._stop_child()
            finally:
                self._calls.release()

    def _others_waiting(self) -> bool:
        """True when another live process left a marker: it waits for the folder."""
        for marker in self.path.parent.glob(f"{self.path.name}.waiting.*"):
            pid = marker.name.rsplit(".", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                marker.unlink(missing_ok=True)  # left by a process that died waiting
                continue
            except PermissionError:
                pass  # alive, another user's
            return True
        return False


@atexit.register
def _close_all() -> None:
    for key, engine in list(_engines.items()):
        if key[0] == os.getpid():
            engine.close()


def _send(stream: BinaryIO, message: object) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other side closed the pipe")
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("the other side closed the pipe mid-message")
    return pickle.loads(payload)  # our own child or parent wrote it


def _serve() -> None:
    """The child: open and close the engine as asked, answer calls until stdin closes."""
    requests = sys.stdin.buffer
    # The protocol owns the real stdout; anything the engine prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from esk_pipeline.pipeline.log_insert import insert_parquet_batches

    client = None

    def open_folder(path: str) -> None:
        nonlocal client
        client = clickhouse_connect.get_client(interface="chdb", path=path)

    def close_folder() -> None:
        nonlocal client
        if client is not None:
            client.close()
        client = None

    methods = {
        "open": open_folder,
        "close": close_folder,
        "command": lambda *a, **k: client.command(*a, **k),
        "query_rows": lambda *a, **k: client.query(*a, **k).result_rows,
        "query_df": lambda *a, **k: client.query_df(*a, **k),
        "insert_df": lambda *a, **k: client.insert_df(*a, **k).written_rows,
        # The rows are read here, from the file, so the calling process never holds them.
        "insert_parquet": lambda *a, **k: insert_parquet_batches(client, *a, **k),
    }
    try:
        while True:
            try:
                method, args, kwargs = _receive(requests)
            except EOFError:
                return
            try:
                answer = ("ok", methods[method](*args, **kwargs))
            except ClickHouseError as exc:
                answer = ("query_error", _first_line(exc))
            except Exception as exc:  # reported to the parent, which raises it
                answer = ("engine_error", f"{type(exc).__name__}: {_first_line(exc)}")
            _send(answers, answer)
    finally:
        close_folder()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


if __name__ == "__main__":
    _serve()
