"""Many statements from one evaluation, rendered on a process pool into one zip."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import zipfile
from decimal import Decimal
from typing import Any

import psutil

from engine.plan import PlanDocument, compile_plan
from server.modules.reports.bulk import (
    _may_have_children,
    member_name,
    render_pool,
    render_statements,
    statements_zip,
)
from server.modules.reports.formatting import decimal_text
from server.modules.reports.tapes import explain_all
from tests.reports.conftest import BRANDING, HOSTILE_REF, Sample, pdf_text, run_info


def test_explain_all_matches_the_engines_explain(sample: Sample) -> None:
    refs = ["E0000001", HOSTILE_REF, "E0000040"]
    tapes = explain_all(sample.plan, sample.frame, refs)
    assert list(tapes) == refs
    for ref in refs:
        assert tapes[ref] == sample.tape(ref)


def test_bulk_pdf_statements_on_two_processes(sample: Sample) -> None:
    refs = [f"E{n:07d}" for n in range(1, 6)]  # 5 statements: chunks of 2, 2 and 1
    tapes = explain_all(sample.plan, sample.frame, refs)
    seen: list[tuple[int, int]] = []
    rendered = render_statements(sample.plan, tapes, run_info(), BRANDING, "pdf",
                                 processes=2, chunk_size=2,
                                 progress=lambda done, total: seen.append((done, total)))
    assert sorted(rendered) == sorted(refs)
    assert seen[-1] == (5, 5) and len(seen) == 3
    text = pdf_text(rendered["E0000003"], "-layout")
    payout = decimal_text(Decimal(tapes["E0000003"]["payout"]))
    assert "E0000003" in text and f"US${payout}" in text
    data = statements_zip(rendered, "pdf")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [member_name(ref, "pdf") for ref in sorted(refs)]
    assert statements_zip(rendered, "pdf") == data


def test_bulk_xlsx_inline(sample: Sample) -> None:
    tapes = explain_all(sample.plan, sample.frame, ["E0000002", "E0000004"])
    rendered = render_statements(sample.plan, tapes, run_info(), BRANDING, "xlsx", processes=1)
    assert all(payload[:2] == b"PK" for payload in rendered.values())


def _render_in_daemon(document: PlanDocument, tapes: dict[str, Any], answers: Any) -> None:
    """What a `paysheet worker` process does: Huey starts its process workers as daemons."""
    try:
        rendered = render_statements(compile_plan(document), tapes, run_info(), BRANDING, "pdf",
                                     processes=2, chunk_size=1)
        answers.put(sorted((ref, pdf[:5]) for ref, pdf in rendered.items()))
    except BaseException as error:  # reported to the test, which names it
        answers.put(f"{type(error).__name__}: {error}")


def test_a_daemonic_worker_process_renders_on_its_own_processes(sample: Sample) -> None:
    """multiprocessing refuses children to a daemonic process ("daemonic processes are not
    allowed to have children"): every export on a real `paysheet worker` failed so."""
    tapes = explain_all(sample.plan, sample.frame, ["E0000001", "E0000002"])
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    worker = context.Process(target=_render_in_daemon, daemon=True,
                             args=(sample.plan.document, tapes, answers))
    worker.start()
    worker.join()  # the answer is small: the queue's feeder has flushed it when it exits
    assert worker.exitcode == 0
    answer = answers.get()
    assert answer == [("E0000001", b"%PDF-"), ("E0000002", b"%PDF-")], answer


def _start_pool_and_wait(answers: Any) -> None:
    """A worker process that starts its render processes, reports one, and blocks."""
    with _may_have_children():
        pool = render_pool(1)
        answers.put(pool.submit(os.getpid).result())
    threading.Event().wait()  # never set: the test kills this process


def test_render_processes_end_when_their_worker_is_killed() -> None:
    """A pool process waits on its call queue forever (it holds the queue's writing end
    too): a worker killed mid-job left its render processes behind for good."""
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    worker = context.Process(target=_start_pool_and_wait, args=(answers,), daemon=True)
    worker.start()
    child = psutil.Process(answers.get())
    assert child.ppid() == worker.pid and child.is_running()
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    child.wait()  # returns once the render process has ended by itself
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
