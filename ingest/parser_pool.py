"""Parse files in worker processes, ahead of the embedding, with a per-file timeout and a
memory limit.

A dispatcher thread keeps the workers busy while the main thread embeds the previous files,
so both cores work. A parse that runs past the timeout is abandoned: its worker is killed and
replaced, and the file is reported as failed. A parse that needs more memory than the limit
(the worker's address space, RLIMIT_AS) fails the same way: the worker reports it and retires,
or dies and is replaced. The run goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Iterable, Iterator

from ingest.parsing import ParsedDocument, ParseError


@dataclass(frozen=True)
class ParseJob:
    key: str  # the file's relative path
    path: str
    file_type: str


@dataclass(frozen=True)
class ParseOutcome:
    job: ParseJob
    document: ParsedDocument | None
    error: str | None


def memory_reason(memory_mb: int) -> str:
    if not memory_mb:  # no limit set: the machine itself ran out
        return "parsing ran out of memory and was abandoned: the file is too large or expands too much; split it"
    return (
        f"parsing needed more than the {memory_mb} MB of memory a parser may use (CAIRN_PARSE_MEMORY_MB) "
        "and was abandoned: the file is too large or expands too much to parse; split it, or raise "
        "CAIRN_PARSE_MEMORY_MB"
    )


def _worker_main(conn: Connection, memory_mb: int = 0) -> None:
    from retrieval.process_env import configure_process_env

    configure_process_env()
    import unstructured.partition.auto  # noqa: F401  (import cost paid before the first job)

    from ingest.parsing import parse_file

    if memory_mb:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("ok", parse_file(job.path, job.file_type)))
        except ParseError as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            # a library may be left half-way through an allocation: this process retires
            conn.send(("retire", memory_reason(memory_mb)))
            return
        except RecursionError:
            conn.send(("error", "the file is nested too deeply to parse (RecursionError); flatten or simplify it"))
        except Exception as exc:  # anything else still must not stop the run
            conn.send(("error", f"unexpected parser error ({type(exc).__name__}: {exc})"))


class _Worker:
    def __init__(self, context, memory_mb: int) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.job: ParseJob | None = None
        self.started = 0.0
        self.ready = False  # set when the worker has imported the parsers

    def submit(self, job: ParseJob) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


class ParserPool:
    def __init__(self, workers: int, timeout_s: float, read_ahead: int = 8, memory_mb: int = 0) -> None:
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.read_ahead = read_ahead
        self.memory_mb = memory_mb  # each worker's address space; 0: no limit
        # spawn: the workers never inherit the parent's torch threads or open index
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []  # kept between runs: each start imports unstructured

    @property
    def worker_pids(self) -> list[int]:
        """The parser processes now running (for measuring them)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    @property
    def busy(self) -> dict[int, str]:
        """Process id -> the key of the file it is parsing now."""
        return {w.process.pid: w.job.key for w in list(self._workers) if w.job is not None and w.process.pid}

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    def __enter__(self) -> "ParserPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(self, jobs: Iterable[ParseJob]) -> Iterator[ParseOutcome]:
        """Outcomes in completion order; at most ``read_ahead`` parsed documents wait."""
        results: queue.Queue[ParseOutcome | None] = queue.Queue(maxsize=self.read_ahead)
        stop = threading.Event()
        crashed: list[BaseException] = []  # the dispatcher's own failure, raised here
        thread = threading.Thread(target=self._dispatch, args=(list(jobs), results, stop, crashed), daemon=True)
        thread.start()
        try:
            while (outcome := results.get()) is not None:
                yield outcome
        finally:
            stop.set()
            while thread.is_alive():  # unblock a dispatcher waiting on a full queue
                try:
                    results.get_nowait()
                except queue.Empty:
                    pass
                thread.join(0.1)
        if crashed:  # files were left unparsed: the run must not look complete
            raise crashed[0]

    def _dispatch(
        self, pending: list[ParseJob], results: queue.Queue, stop: threading.Event, crashed: list[BaseException]
    ) -> None:
        pending.reverse()  # pop() from the end keeps the given order
        workers = self._workers

        def put(outcome: ParseOutcome) -> bool:
            while not stop.is_set():
                try:
                    results.put(outcome, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            while pending and len(workers) < self.workers:
                workers.append(self._start())
            if not pending:
                return
            for worker in workers:
                if worker.ready and pending:
                    worker.submit(pending.pop())
            while any(w.job or not w.ready for w in workers) and not stop.is_set():
                waiting = {w.conn: w for w in workers if w.job or not w.ready}
                for conn in wait(list(waiting), timeout=0.5):
                    worker = waiting[conn]
                    job = worker.job
                    try:
                        status, value = conn.recv()
                    except (EOFError, OSError):  # the worker died (e.g. killed for memory, a crash in C)
                        died = self._death(worker)
                        self._replace(workers, worker)
                        if job is None:
                            raise RuntimeError(f"a parser process could not start ({died}); see the error above")
                        status, value = "error", self._died_reason(died)
                        worker = workers[-1]
                    if status == "ready":
                        worker.ready = True
                        if worker.job is None and pending:
                            worker.submit(pending.pop())
                        continue
                    worker.job = None
                    if status == "retire":  # it hit the memory limit: a fresh process takes over
                        self._replace(workers, worker)
                        worker = workers[-1]
                    if not put(ParseOutcome(job, value if status == "ok" else None, None if status == "ok" else value)):
                        return
                    if worker.ready and worker.job is None and pending:
                        worker.submit(pending.pop())
                now = time.monotonic()
                for worker in [w for w in workers if w.job and now - w.started > self.timeout_s]:
                    job = worker.job
                    self._replace(workers, worker)
                    reason = (
                        f"parsing took longer than {self.timeout_s:g} s and was abandoned (CAIRN_PARSE_TIMEOUT_S): "
                        "the file is very large or malformed; split it, or raise CAIRN_PARSE_TIMEOUT_S"
                    )
                    if not put(ParseOutcome(job, None, reason)):
                        return
                if not pending and not any(w.job for w in workers):
                    return
        except BaseException as exc:
            crashed.append(exc)
        finally:
            for worker in [w for w in workers if w.job]:  # stopped mid-file: not reusable
                worker.kill()
                workers.remove(worker)
            while True:
                try:
                    results.put(None, timeout=0.2)
                    break
                except queue.Full:
                    if stop.is_set():
                        break

    def _start(self) -> _Worker:
        return _Worker(self._context, self.memory_mb)

    def _replace(self, workers: list[_Worker], worker: _Worker) -> None:
        worker.kill()
        workers.remove(worker)
        workers.append(self._start())

    @staticmethod
    def _death(worker: _Worker) -> str:
        worker.process.join(2)
        code = worker.process.exitcode
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def _died_reason(self, died: str) -> str:
        if self.memory_mb:
            memory = f"more than the {self.memory_mb} MB of memory a parser may use (CAIRN_PARSE_MEMORY_MB)"
            remedy = "split it, or raise CAIRN_PARSE_MEMORY_MB"
        else:
            memory, remedy = "more memory than the machine could give", "split it"
        return (
            f"the parser process died while reading this file ({died}): the file is malformed or needs {memory}; "
            f"check that it opens in its application, {remedy}"
        )
