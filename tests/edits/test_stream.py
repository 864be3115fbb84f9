"""The streaming loop's write-behind stage (pipelines.edits.stream): the hook and the writer run
on a thread of their own, one frame behind the edit; order, errors, cancellation and memory
must be what the one-thread loop gave."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import NDArray

from pipelines.edits import stream
from pipelines.edits.guard import EditGuard
from pipelines.edits.stream import StreamControls, edit_stream


class _Guard:
    """Stands for the edit guard: marks each frame with its index, in the calling thread."""

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def apply(self, index: int, rgb: NDArray[np.uint8]) -> None:
        self.threads.add(threading.current_thread().name)
        rgb[0, 0, 0] = index % 256


class _Writer:
    def __init__(self, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.written: list[int] = []
        self.threads: set[str] = set()
        self.fail_at = fail_at
        self.delay = delay

    def write(self, frame: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        value = int(frame[1, 0, 0])
        if value == self.fail_at:
            raise OSError(f"disk full at frame {value}")
        self.written.append(value)


def _frames(n: int) -> list[tuple[int, NDArray[np.uint8]]]:
    out = []
    for i in range(n):
        rgb = np.zeros((4, 4, 3), np.uint8)
        rgb[1, 0, 0] = i
        out.append((i, rgb))
    return out


def _guard(g: _Guard) -> EditGuard:
    return cast(EditGuard, g)


def test_every_frame_is_hooked_then_written_in_order_on_one_writer_thread() -> None:
    guard, writer = _Guard(), _Writer()
    hooked: list[tuple[int, int]] = []
    progress: list[int] = []

    def hook(index: int, rgb: NDArray[np.uint8]) -> None:
        # The hook sees the edited frame (the guard's mark) before its encode.
        hooked.append((index, int(rgb[0, 0, 0])))
        assert len(writer.written) == index

    done = edit_stream(_frames(50), _guard(guard), writer, total=50, what="test",
                       controls=StreamControls(progress=lambda n, _: progress.append(n),
                                               frame_hook=hook))
    assert done == 50
    assert writer.written == list(range(50))
    assert hooked == [(i, i) for i in range(50)]
    assert progress == list(range(1, 51))
    assert guard.threads == {threading.current_thread().name}
    assert writer.threads == {"edit-stream-writer"}
    assert not [t for t in threading.enumerate() if t.name == "edit-stream-writer"]


def test_a_writer_error_is_raised_in_the_editing_thread_and_stops_the_loop() -> None:
    guard, writer = _Guard(), _Writer(fail_at=7)
    with pytest.raises(OSError, match="disk full at frame 7"):
        edit_stream(_frames(200), _guard(guard), writer, total=200, what="test",
                    controls=StreamControls())
    assert writer.written == list(range(7))
    assert not [t for t in threading.enumerate() if t.name == "edit-stream-writer"]


def test_cancel_stops_the_writer_without_writing_the_queued_frames() -> None:
    guard, writer = _Guard(), _Writer(delay=0.01)
    edited = 0

    def cancelled() -> bool:
        return edited >= 20

    def frames() -> Any:
        nonlocal edited
        for item in _frames(200):
            edited += 1
            yield item

    with pytest.raises(InterruptedError, match="test cancelled"):
        edit_stream(frames(), _guard(guard), writer, total=200, what="test",
                    controls=StreamControls(cancelled=cancelled))
    # At most the frames queued behind the one in hand were dropped; none after the cancel.
    assert writer.written == list(range(len(writer.written)))
    assert len(writer.written) <= 20
    assert not [t for t in threading.enumerate() if t.name == "edit-stream-writer"]


def test_memory_is_bounded_by_the_write_behind_depth() -> None:
    """A slow writer holds the editing thread back: never more than WRITE_BEHIND frames
    wait (plus the one being written and the one being handed over)."""
    guard, writer = _Guard(), _Writer(delay=0.005)
    ahead: list[int] = []

    def frames() -> Any:
        for i, item in enumerate(_frames(60)):
            ahead.append(i - len(writer.written))
            yield item

    edit_stream(frames(), _guard(guard), writer, total=60, what="test",
                controls=StreamControls())
    assert max(ahead) <= stream.WRITE_BEHIND + 2


def test_an_interrupt_while_waiting_for_the_writer_leaves_no_writer_running() -> None:
    """Ctrl-C (or any exception) that reaches the editing thread while it waits at the end
    for the queued frames must still stop and join the writer before ``edit_stream`` gives
    up: the caller then closes or deletes the writer's file, which a live writer thread
    would still be encoding into."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    writer = _Writer(delay=0.005)
    after: list[int] = []
    finished = threading.Event()

    def hook(index: int, rgb: NDArray[np.uint8]) -> None:
        if index == 22:  # every frame is handed over (8 queue): the editing thread waits
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
            time.sleep(0.2)
        if finished.is_set():
            after.append(index)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            edit_stream(_frames(30), _guard(_Guard()), writer, total=30, what="test",
                        controls=StreamControls(frame_hook=hook))
        finished.set()
        alive = [t for t in threading.enumerate() if t.name == "edit-stream-writer"]
        written = list(writer.written)
        time.sleep(0.3)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not alive
    assert not after
    assert writer.written == written  # nothing written once edit_stream gave up
    assert written == list(range(len(written)))


def test_a_writer_error_on_an_earlier_frame_wins_over_a_later_error_of_the_edit() -> None:
    """The one-thread loop raised frame 3's write error before it read frame 4; behind the
    writer thread the editing thread may meet its own error (a truncated source, a cancel)
    on a later frame first: the earlier frame's error (its type sets the CLI's exit code)
    is still the one raised."""
    failed = threading.Event()

    class _Failing(_Writer):
        def write(self, frame: Any) -> None:
            try:
                super().write(frame)
            except OSError:
                failed.set()
                raise

    def frames() -> Any:
        for index, rgb in _frames(10):
            if index == 4:
                assert failed.wait(5)
                time.sleep(0.05)
                raise RuntimeError("truncated source at frame 4")
            yield index, rgb

    with pytest.raises(OSError, match="disk full at frame 3") as caught:
        edit_stream(frames(), _guard(_Guard()), _Failing(fail_at=3), total=10, what="test",
                    controls=StreamControls())
    assert "truncated source" in repr(caught.value.__context__)
    assert not [t for t in threading.enumerate() if t.name == "edit-stream-writer"]
