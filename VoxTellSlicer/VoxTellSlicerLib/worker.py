"""Long work off the GUI thread, and one VoxTell run at a time in the process.

``runInWorker`` runs a function (model loading, inference, downloads, installs; never
MRML) in a daemon thread while the calling thread keeps calling ``poll`` (the GUI passes
one that processes its events and refreshes the progress bar), so Slicer stays responsive
and Cancel stays clickable. The module, the Segment Editor effect and the downloads all
use it. ``exclusiveRun`` is the process-wide guard: the module and the effect share one
model, so a second request while one runs is refused with a clear message.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Tuple, TypeVar

from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.progress import CancelCheck

T = TypeVar("T")

_runLock = threading.Lock()


class NothingWritten(Cancelled):
    """A run that stopped without writing for a reason its message tells the user (the scene,
    the volume or the editor's selection changed; a question was answered No). A plain
    ``Cancelled`` is the user's Cancel."""


class RunInProgress(InputError):
    """Another VoxTell run (module or Segment Editor effect) is still going."""


@contextmanager
def exclusiveRun() -> Iterator[None]:
    """Hold the process-wide VoxTell run; raises ``RunInProgress`` when another run holds it.

    Not reentrant on purpose: the GUI thread processes events while a run waits for its
    worker, so a second click (module or effect) arrives on the same thread.
    """
    if not _runLock.acquire(blocking=False):
        raise RunInProgress(
            "VoxTell is already running (in the VoxTell Segmentation module or the Segment Editor effect). "
            "Wait for it to finish or press Cancel there, then try again."
        )
    try:
        yield
    finally:
        _runLock.release()


def isRunning() -> bool:
    """True while a VoxTell run holds the process-wide guard."""
    return _runLock.locked()


class BackgroundCall:
    """``function()`` started in a daemon thread; ``done()`` says when it ended, ``result()``
    returns its value or re-raises its exception (on the caller's thread)."""

    def __init__(self, function: Callable[[], T], name: str = "VoxTell worker") -> None:
        self._outcome: dict = {}
        self._thread = threading.Thread(target=self._run, args=(function,), name=name, daemon=True)
        self._thread.start()

    def _run(self, function: Callable[[], T]) -> None:
        try:
            self._outcome["result"] = function()
        except BaseException as error:  # re-raised on the caller's thread
            self._outcome["error"] = error

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)

    def result(self):
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]


def runInWorker(compute: Callable[[], T], poll: Optional[Callable[[], object]] = None, interval: float = 0.05,
                name: str = "VoxTell worker") -> T:
    """``compute()`` in a worker thread; the caller's thread calls ``poll()`` until it ends.

    The result is returned and an exception is re-raised on the caller's thread. Cancelling
    is ``compute``'s business (it gets a cancel check from its caller).
    """
    call = BackgroundCall(compute, name)
    while not call.done():
        if poll is not None:
            poll()
        call.wait(interval)
    if poll is not None:
        poll()
    return call.result()


def setupDependenciesInWorker(poll: Optional[Callable[[], object]], log: Callable[[str], object],
                              confirm: Callable[[str], bool], cancel: CancelCheck = None) -> list:
    """First-use setup: when packages are missing, ``confirm(question)`` (on the caller's thread:
    the list and the download sizes) and, after a yes, the install (PyTorch through the PyTorch
    extension) in the worker, holding the run guard; returns what was installed. A no raises
    ``Cancelled`` with nothing installed."""
    from VoxTellSlicerLib.dependencies import installPlan, installQuestion, setupDependencies

    plan = installPlan()
    if plan and not confirm(installQuestion(plan)):
        raise NothingWritten("Not run: nothing was installed (VoxTell needs the packages it listed).")
    with exclusiveRun():
        return runInWorker(lambda: setupDependencies(log=log, cancel=cancel), poll=poll, name="VoxTell setup")


class ProgressState:
    """What a worker reports, for the GUI thread to show: ``progress(done, total)`` and
    ``status(text)`` may be called from any thread; ``latest()`` is read by ``poll``.

    The GUI's own words outlast the worker's next line: ``pin(text)`` (e.g. "Cancelling...")
    is shown instead of what the worker says until the run ends, ``note(text)`` (e.g.
    "Installed nibabel.") is shown in front of it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: Tuple[int, int] = (0, 0)
        self._status = ""
        self._note = ""
        self._pinned = ""

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self._progress = (int(done), int(total))

    def status(self, text: str) -> None:
        with self._lock:
            self._status = str(text)
            self._progress = (0, 0)

    def note(self, text: str) -> None:
        with self._lock:
            self._note = str(text)

    def pin(self, text: str) -> None:
        with self._lock:
            self._pinned = str(text)

    def latest(self) -> Tuple[int, int, str]:
        """(done, total, status text)."""
        with self._lock:
            text = self._pinned or " ".join(part for part in (self._note, self._status) if part)
            return (*self._progress, text)


def showProgress(state: ProgressState, progressBar, statusLabel) -> None:
    """Show ``state`` on a (PythonQt) progress bar and status label: the module's and the effect's poll."""
    done, total, status = state.latest()
    if status:
        statusLabel.text = status
    progressBar.maximum = total or 0  # 0: busy indicator
    progressBar.value = done if total else 0
