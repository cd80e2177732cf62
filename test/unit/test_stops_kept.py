"""A stop (Ctrl-C, SIGTERM) that lands where other code turns it into another error is
given back: by the message decoder, and by :func:`~dpt_ros.cli.stop_signals.swallowed_stop`
for a stop that was caught on its way up."""

from __future__ import annotations

import os
import signal
import time

import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image

from dpt_ros.cli.stop_signals import (
    Terminated,
    raise_swallowed,
    stop_signals_deferred,
    stop_signals_raise,
    swallowed_stop,
)
from dpt_ros.ros.messages import deserialized

pytestmark = pytest.mark.unit


@pytest.fixture
def height_raises(monkeypatch):
    """Image's ``height`` setter, which rclpy's binding calls from C++ while it decodes,
    raises ``stop`` (as a signal handler would there)."""
    height = Image.__dict__["height"]

    def set_to(stop: BaseException):
        def setter(self, value):
            if value == 7:  # the decoded message's, not the default's
                raise stop
            height.fset(self, value)

        monkeypatch.setattr(Image, "height", property(height.fget, setter))

    return set_to


def test_a_stop_inside_the_decoding_comes_out_as_itself(height_raises):
    raw = serialize_message(Image(height=7))
    height_raises(Terminated(signal.SIGTERM))
    with pytest.raises(Terminated) as stop:
        deserialized(raw, Image)
    assert stop.value.signum == signal.SIGTERM
    height_raises(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        deserialized(raw, Image)


def test_other_errors_inside_the_decoding_stay_errors(height_raises):
    height_raises(ValueError("no"))
    with pytest.raises(ValueError, match="no"):
        deserialized(serialize_message(Image(height=7)), Image)


def test_corrupt_and_foreign_bytes_are_still_refused():
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        deserialized(b"\x00\x01\x00\x00\xff", Image)
    info = deserialized(serialize_message(CameraInfo(width=640)), CameraInfo)
    assert info.width == 640


def _swallow_a_signal(signum: int) -> None:
    """The signal arrives, and code catches what its handler raised."""
    try:
        os.kill(os.getpid(), signum)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        return
    raise AssertionError("the handler raised nothing")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_caught_stop_is_given_back(signum):
    with stop_signals_raise():
        assert swallowed_stop() is None
        raise_swallowed()  # nothing yet
        _swallow_a_signal(signum)
        stop = swallowed_stop()
        assert isinstance(stop, KeyboardInterrupt)
        assert getattr(stop, "signum", signal.SIGINT) == signum
        with pytest.raises(KeyboardInterrupt):
            raise_swallowed()


def test_a_deferred_signal_is_no_swallowed_stop():
    """Signals recorded while an output opens or closes raise nothing themselves: they
    are the caller's to act on, not a stop to give back."""
    with stop_signals_raise():
        with stop_signals_deferred() as received:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        assert received == [signal.SIGTERM]
        assert swallowed_stop() is None


def test_outside_a_run_nothing_is_given_back():
    assert swallowed_stop() is None
