"""Ctrl-C during a run: stop the stage's kernel and its workers, then say where the run stopped.

A terminal's Ctrl-C reaches the runner only (each kernel runs in a session of its own). Left
alone, it raises KeyboardInterrupt inside papermill's event loop: about 150 lines of nbclient
and asyncio traceback, and no manifest. Instead, while a stage runs, the first Ctrl-C
interrupts its notebook as JupyterLab's stop button does (SIGINT to the kernel's process
group: the kernel, its loky workers and their helpers), and a kernel still running
GRACE_SECONDS later, or a second Ctrl-C, has its process group killed. papermill then returns
as for a failed cell, the runner records the stage as interrupted and writes the manifest,
and run_all.py prints one line and exits 130. Between stages, Ctrl-C stops the run before the
next stage; a second one raises KeyboardInterrupt at once.

SIGTERM, what a scheduler sends to stop a job (systemd, a Kubernetes pod, `kill`), is taken
the same way: the run stops in order, the manifest says 'interrupted (SIGTERM)', and the exit
code is 143. Without this, SIGTERM would end the runner at once and leave a kernel running and
a 'running' manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from capacity_forecaster.core.errors import CapacityForecasterError

if TYPE_CHECKING:  # imported when a stage runs: run_all.py --list and bad params stay quick
    from jupyter_client.manager import AsyncKernelManager

logger = logging.getLogger(__name__)

GRACE_SECONDS = 10.0  # for the interrupted cell to stop before its kernel is killed
POLL_SECONDS = 0.2
EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C
_WATCHED: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def exit_code(signum: int) -> int:
    """What a shell reports for a command ended by signal ``signum`` (130 for Ctrl-C)."""
    return 128 + signum


class RunInterrupted(CapacityForecasterError):
    """The run was stopped by Ctrl-C or SIGTERM; the message says where and how to complete it."""

    def __init__(self, message: str, exit_code: int = EXIT_CODE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _kernel_manager_class(kernels: list[AsyncKernelManager]) -> type[AsyncKernelManager]:
    """papermill's kernel manager, remembering each one it makes in ``kernels``."""
    from jupyter_client.manager import AsyncKernelManager

    class WatchedKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            kernels.append(self)

    return WatchedKernelManager


def _process_groups(kernels: list[AsyncKernelManager]) -> list[int]:
    """The process group of each launched kernel (the kernel leads it; its workers are in it)."""
    groups = (getattr(km.provisioner, "pgid", None) for km in kernels)
    return [pgid for pgid in groups if isinstance(pgid, int) and pgid > 1]


def _signal_group(pgid: int, signum: int) -> None:
    # Gone already; a group id reused meanwhile would not be ours (PermissionError).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class InterruptWatch:
    """Turns Ctrl-C and SIGTERM into an orderly stop while installed (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None  # the first signal that asked the run to stop
        self._presses = 0
        self._kernels: list[AsyncKernelManager] | None = None  # set while a stage runs
        self._stage_over = threading.Event()
        self._kill_now = threading.Event()
        self._stopper: threading.Thread | None = None
        self._previous: dict[int, Any] = {}
        self._installed = False

    @property
    def cause(self) -> str:
        """What stopped the run, as its records say it: 'Ctrl-C' or 'SIGTERM'."""
        return _WATCHED.get(self.signum or signal.SIGINT, "Ctrl-C")

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum or signal.SIGINT)

    def __enter__(self) -> InterruptWatch:
        if threading.current_thread() is threading.main_thread():
            for signum in _WATCHED:
                self._previous[signum] = signal.signal(signum, self._on_interrupt)
            self._installed = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            # None: a handler not set from Python; Python's own then raises KeyboardInterrupt.
            signal.signal(
                signal.SIGINT, self._previous[signal.SIGINT] or signal.default_int_handler
            )
            signal.signal(signal.SIGTERM, self._previous[signal.SIGTERM] or signal.SIG_DFL)
            self._installed = False

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self._presses += 1
        self.requested = True
        if self.signum is None:
            self.signum = signum
        if self._kernels is None:
            if self._presses > 1:
                raise KeyboardInterrupt
            return  # the runner stops before its next stage
        if self._presses > 1:
            self._kill_now.set()
        if self._stopper is None:
            self._stopper = threading.Thread(
                target=self._stop_kernels, args=(self._kernels,), name="stop-kernels", daemon=True
            )
            self._stopper.start()

    def _stop_kernels(self, kernels: list[AsyncKernelManager]) -> None:
        """Interrupt the stage's kernels, and kill those still running after the grace time."""
        deadline = time.monotonic() + GRACE_SECONDS
        interrupted: set[int] = set()
        killing = False
        while not self._stage_over.is_set():
            kill = self._kill_now.is_set() or time.monotonic() >= deadline
            if kill and not killing:
                killing = True
                logger.warning("interrupt: killing the kernel and its workers")
            for pgid in _process_groups(kernels):
                if kill:
                    _signal_group(pgid, signal.SIGKILL)
                elif pgid not in interrupted:
                    _signal_group(pgid, signal.SIGINT)
                    interrupted.add(pgid)
            self._stage_over.wait(POLL_SECONDS)

    @contextmanager
    def stage(self) -> Iterator[type[AsyncKernelManager]]:
        """While a stage executes: yields the kernel manager class papermill is to use."""
        kernels: list[AsyncKernelManager] = []
        self._stage_over.clear()
        self._kill_now.clear()
        self._kernels = kernels
        try:
            yield _kernel_manager_class(kernels)
        finally:
            self._kernels = None
            self._stage_over.set()
            if self._stopper is not None:
                self._stopper.join()
                self._stopper = None
            if self.requested:
                # papermill shut the kernel down; its workers may outlive it by a moment.
                for pgid in _process_groups(kernels):
                    _signal_group(pgid, signal.SIGKILL)
