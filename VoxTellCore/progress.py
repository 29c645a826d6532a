"""Progress callbacks and cancel checks: the one definition every long-running step uses."""

from __future__ import annotations

import threading
from typing import Callable, Optional, Union

#: ``progress(done, total)``, called from the thread that does the work.
Progress = Callable[[int, int], object]
#: A ``threading.Event`` (set = cancel) or a function returning True to cancel; None never cancels.
CancelCheck = Optional[Union[threading.Event, Callable[[], bool]]]


def is_cancelled(cancel: CancelCheck) -> bool:
    """True when ``cancel`` asks the work to stop."""
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def raise_if_cancelled(cancel: CancelCheck, message: str = "Inference cancelled.") -> None:
    """Raise ``Cancelled`` when ``cancel`` asks the work to stop."""
    from VoxTellCore.errors import Cancelled

    if is_cancelled(cancel):
        raise Cancelled(message)
