"""A one-slot "latest frame wins" queue: camera callbacks put, the inference worker
takes, and a frame that waited too long is replaced by a newer one (counted as
dropped) instead of queueing up behind the model (camera_calibration's BufferQueue)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any


class LatestFrame:
    """A one-slot queue: ``put`` replaces what is waiting (counted as dropped).

    Args:
        condition: shared by several slots so that one consumer can wait for any of
            them (``take_any``); None = a condition of its own.
    """

    def __init__(self, condition: threading.Condition | None = None) -> None:
        self._cond = condition if condition is not None else threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    @property
    def waiting(self) -> bool:
        """Whether an item waits in the slot."""
        with self._cond:
            return self._item is not None

    def get(self, timeout: float) -> Any:
        """The waiting item (and empties the slot), or None after ``timeout`` or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @staticmethod
    def take_any(slots: Sequence[LatestFrame], timeout: float) -> list[Any]:
        """Waits until at least one slot holds an item (or ``timeout``, or a slot is
        closed), then empties every slot, without waiting for the others.

        Args:
            slots: queues created with one shared condition.
            timeout: seconds to wait while every slot is empty.

        Returns:
            One entry per slot: its item, or None where it held none.
        """
        cond = slots[0]._cond
        if any(s._cond is not cond for s in slots):
            raise ValueError("take_any needs slots created with one shared condition")
        with cond:
            cond.wait_for(lambda: any(s._item is not None or s._closed for s in slots), timeout)
            items = [s._item for s in slots]
            for s in slots:
                s._item = None
            return items
