"""Compose a batch's messages in worker processes, so a large send uses every core.

Composing (render, link rewriting, the text part, the MIME build) is pure Python and takes 2-6 ms a
message; in the sending process it competes for the GIL with the SMTP thread and the ledger
writes, which held a batch under 200 messages/s on 2 cores. Workers compose and return the bytes
to send; the ledger, SMTP and ``email_sent`` events stay in the sending process, so the send
ledger's protocol (claim, send, record) is unchanged: a worker never writes or sends anything.

Workers are spawned (fresh interpreters, not forks of a process that runs chDB's threads), ignore
SIGINT (Ctrl+C is the sending process's to handle: it defers what was claimed and not sent), and
exit when the process that started them is gone, so a ``kill -9`` of a rule runner leaves no
workers behind. (Not a ``forkserver``: its workers keep each other and the server alive.)

One pool serves the process's batches; a template that calls ``recommended()`` needs the event
store and is composed in the sending process instead. As with any spawned pool, a script of your
own that sends a large batch through this package needs the ``if __name__ == "__main__":`` guard
(or ``ODNOS_MAIL_WORKERS=1``), since a worker imports that script again; the ``odnos`` command has it.

A worker that dies (killed, out of memory) breaks the whole pool: the results being waited for
raise ``ComposeWorkerDied``, an ``OdnosError`` (the sending process defers what it claimed and did
not send), and the next call starts new workers.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from tracker.crm.mailer.compose import Composer, WireMessage
from tracker.crm.mailer.render import CompiledTemplate, TemplateError
from tracker.crm.model import Contact
from tracker.crm.templates import check_template
from tracker.errors import OdnosError
from tracker.tokens import TokenCodec

SMALLEST_BATCH = 200
"""Fewer messages than this are composed in the sending process: starting the workers takes about
half a second (0.47 s measured on 2 cores), as long as composing 100 to 200 messages here."""


@dataclass(frozen=True)
class _Job:
    """What a worker needs to compose: everything a ``Composer`` and the template are made of."""

    keys: tuple[str, ...]
    base_url: str
    sender: str
    list_id: str
    template: tuple[str, str, str]  # subject, html, text sources
    contacts: tuple[tuple[Contact, str], ...]  # (contact, message id)


class ComposeWorkerDied(OdnosError):
    """A compose worker ended before it answered (killed, out of memory): its messages are not composed."""

    status = 503
    code = "compose_worker_died"


WORKER_DIED = "a mail compose worker stopped (killed, or out of memory) while composing"

_Result = WireMessage | tuple[str, str]  # a message, or a template failure: (part, message)


def usable(template: CompiledTemplate, size: int, workers: int) -> bool:
    """Whether a batch of ``size`` messages of ``template`` is composed in workers."""
    return workers > 1 and size >= SMALLEST_BATCH and not template.uses("recommended")


class ComposePool:
    """Worker processes that compose messages for ``Composer`` settings given with each call."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._guard = threading.Lock()

    def compose(self, composer: Composer, template: CompiledTemplate,
                items: Sequence[tuple[Contact, str]]) -> Iterator[WireMessage | TemplateError]:
        """Start composing ``items`` (contact, message id) at once; yield each result in order.

        A template that fails for a contact yields its ``TemplateError``; a worker that died raises
        ``ComposeWorkerDied`` (the next call starts new workers).
        """
        share = max(1, -(-len(items) // self.workers))  # ceil: one job per worker (none for no items)
        futures = [self._submit(_Job(composer.codec.keys, composer.base_url, composer.sender,
                                     composer.list_id, (template.subject_source, template.html_source,
                                                        template.text_source),
                                     tuple(items[i:i + share])))
                   for i in range(0, len(items), share)]
        return _results(futures)

    def _submit(self, job: _Job) -> Future:
        with self._guard:
            if self._executor is None or getattr(self._executor, "_broken", False):
                self._executor = self._start()
            try:
                return self._executor.submit(_compose_job, job)
            except BrokenProcessPool:  # a worker died since the check, while idle: nothing is lost
                self._executor = self._start()
                return self._executor.submit(_compose_job, job)

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker)

    def close(self) -> None:
        with self._guard:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _results(futures: list[Future]) -> Iterator[WireMessage | TemplateError]:
    for future in futures:
        try:
            results = future.result()
        except BrokenProcessPool:
            raise ComposeWorkerDied(WORKER_DIED) from None
        for result in results:
            yield result if isinstance(result, WireMessage) else TemplateError(result[1], part=result[0])


_pools: dict[int, ComposePool] = {}
_pools_guard = threading.Lock()


def shared_pool(workers: int) -> ComposePool:
    """This process's pool of ``workers`` processes, started on first use."""
    with _pools_guard:
        if workers not in _pools:
            _pools[workers] = ComposePool(workers)
        return _pools[workers]


@atexit.register
def _close_pools() -> None:
    for pool in list(_pools.values()):
        pool.close()


# --- in the worker processes ---

_composers: dict[tuple, Composer] = {}
_templates: dict[tuple[str, str, str], CompiledTemplate] = {}


def _start_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="odnos-parent-watch",
                     daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this worker once the sending process is gone: the queue's pipes stay open here (every
    worker holds both ends), so nothing else would tell."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _compose_job(job: _Job) -> list[_Result]:
    key = (job.keys, job.base_url, job.sender, job.list_id)
    composer = _composers.get(key)
    if composer is None:
        _composers.clear()  # one batch's settings at a time is the common case
        composer = _composers[key] = Composer(TokenCodec(list(job.keys)), job.base_url, job.sender, None,
                                              list_id=job.list_id)
    template = _templates.get(job.template)
    if template is None:
        _templates.clear()
        template = _templates[job.template] = check_template(*job.template)
    results: list[_Result] = []
    for contact, message_id in job.contacts:
        try:
            message = composer.compose(template, contact, message_id)
        except TemplateError as exc:
            results.append((exc.part, exc.message.removeprefix(f"template {exc.part}: ")))
            continue
        results.append(message.wire())
    return results
