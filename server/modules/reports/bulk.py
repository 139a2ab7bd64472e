"""Bulk statements: many employees rendered on a process pool into one zip.

Rendering is CPU-bound (Typst: a few ms a statement; each process compiles the template
once), so statements are rendered in chunks on `processes` worker processes (spawned, so no
Polars/huey threads are forked) and reported through `progress(done, total)`. The zip lists
`statements/<ref>.<format>` in employee order with fixed metadata, so the same run always
gives the same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from engine.plan import CompiledPlan, PlanDocument, compile_plan
from server.modules.reports.bundle import safe_member_name
from server.modules.reports.files import deterministic_zip
from server.modules.reports.render import statement_html, statement_pdf, statement_xlsx
from server.modules.reports.statement import Branding, RunInfo, build_statement

Format = Literal["pdf", "xlsx", "html"]
Progress = Callable[[int, int], None]
CHUNK = 20


def render_statement(plan: CompiledPlan, tape: Mapping[str, Any], inputs: Mapping[str, Any] | None,
                     run: RunInfo, branding: Branding, fmt: Format) -> bytes:
    """One statement in `fmt` (pdf, xlsx or html as UTF-8 bytes)."""
    statement = build_statement(plan, tape, run, branding, inputs)
    if fmt == "pdf":
        return statement_pdf(statement)
    if fmt == "xlsx":
        return statement_xlsx(statement)
    if fmt == "html":
        return statement_html(statement).encode("utf-8")
    raise ValueError(f"unknown statement format {fmt!r} (pdf, xlsx or html)")


@dataclass(frozen=True)
class _Chunk:
    document: PlanDocument
    plan_hash: str
    run: RunInfo
    branding: Branding
    fmt: Format
    items: tuple[tuple[str, dict[str, Any], dict[str, Any] | None], ...]


_compiled: dict[tuple[str, int], CompiledPlan] = {}


def _plan_in_worker(document: PlanDocument, plan_hash: str) -> CompiledPlan:
    """Compile once per worker process, keyed by plan hash and version: the hash leaves the
    version out, and a statement prints the version its compiled document carries."""
    key = (plan_hash, document.version)
    if key not in _compiled:
        _compiled[key] = compile_plan(document)
    return _compiled[key]


def _render_chunk(chunk: _Chunk, plan: CompiledPlan | None = None) -> list[tuple[str, bytes]]:
    """The chunk's statements, with `plan` when the caller has it (inline), else compiled
    from the chunk's document (a worker process)."""
    plan = plan if plan is not None else _plan_in_worker(chunk.document, chunk.plan_hash)
    return [(ref, render_statement(plan, tape, inputs, chunk.run, chunk.branding, chunk.fmt))
            for ref, tape, inputs in chunk.items]


PARENT_CHECK_SECONDS = 1.0


def render_pool(processes: int) -> ProcessPoolExecutor:
    """Spawned processes (no Polars/Huey threads forked) that end with this process."""
    return ProcessPoolExecutor(max_workers=processes,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """In each render process: end it as soon as the process that started it is gone.
    A pool process waits on its call queue, which never reports EOF (it holds the queue's
    writing end too), so a worker killed mid-job would otherwise leave its render
    processes waiting forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def _may_have_children() -> Iterator[None]:
    """Let a daemonic process (a `paysheet worker` process: Huey starts its workers as
    daemons) start the render processes, which multiprocessing otherwise refuses. They do
    not outlive it (`_exit_with_parent`)."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if daemon is None:
            config.pop("daemon", None)
        else:
            config["daemon"] = daemon


def member_name(employee_ref: str, fmt: Format) -> str:
    return f"statements/{safe_member_name(employee_ref)}.{fmt}"


def render_statements(
    plan: CompiledPlan,
    tapes: Mapping[str, Mapping[str, Any]],
    run: RunInfo,
    branding: Branding,
    fmt: Format = "pdf",
    inputs: Mapping[str, Mapping[str, Any]] | None = None,
    processes: int = 2,
    progress: Progress | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[list[tuple[str, bytes]]], None] | None = None,
) -> dict[str, bytes]:
    """employee_ref -> statement bytes for every tape, on `processes` processes (1: inline);
    `progress(done, total)` after every chunk (default size: at most CHUNK, small enough to
    give every process several chunks). With `on_chunk`, each chunk's (ref, bytes) pairs go
    there instead and nothing is kept (the result is empty): a 10,000-statement export
    writes them to disk as they come. An exception from a callback (a cancelled job) stops
    the work: chunks not started are dropped."""
    refs: Sequence[str] = sorted(tapes)
    items = [(ref, dict(tapes[ref]), dict(inputs[ref]) if inputs else None) for ref in refs]
    if chunk_size is None:
        chunk_size = max(1, min(CHUNK, -(-len(items) // (max(processes, 1) * 4))))
    chunks = [
        _Chunk(plan.document, plan.plan_hash, run, branding, fmt, tuple(items[i:i + chunk_size]))
        for i in range(0, len(items), chunk_size)
    ]
    rendered: dict[str, bytes] = {}
    count = 0

    def collect(pairs: list[tuple[str, bytes]]) -> None:
        nonlocal count
        if on_chunk is not None:
            on_chunk(pairs)
        else:
            rendered.update(pairs)
        count += len(pairs)
        if progress:
            progress(count, len(items))

    if processes <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            collect(_render_chunk(chunk, plan))
        return rendered
    pool = render_pool(min(processes, len(chunks)))
    try:
        with _may_have_children():
            futures = [pool.submit(_render_chunk, chunk) for chunk in chunks]
        for future in as_completed(futures):
            collect(future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return rendered


def statements_zip(rendered: Mapping[str, bytes], fmt: Format) -> bytes:
    """The bulk download: statements/<ref>.<fmt> in employee order."""
    names = {ref: member_name(ref, fmt) for ref in rendered}
    if len(set(names.values())) != len(names):
        raise ValueError("two employees map to the same statement file name")
    return deterministic_zip([(names[ref], rendered[ref]) for ref in sorted(rendered)])
