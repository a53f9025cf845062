"""Work that waits on a server, run while this process goes on.

`InBackground(function, *args)` starts `function(*args)` now, beside the caller: on a
green thread where eventlet patched threading (spawned without waiting for it to start:
`threading.Thread.start` waits, and under eventlet that wait let every other ready
worker run first, 30-40 ms more a report in bench/gateway.py at load 10-12), on a thread
otherwise. `result()` waits for it and returns its value or raises its error; a result
nobody asks for (the caller failed meanwhile) is dropped with its error.

`with meanwhile(work):` runs `work()` so beside the block, waits for it when the block
ends, whatever happened, and raises what it raised (the block's own exception first):
for a round trip whose reply the block does not need (a store of rows the block only
reads), so the server and this process work at once. `work` must not share anything the
block changes.

A green thread only runs while the others wait: a block that computes for long would
hold `work`'s sends back until it is done. Such a block runs its computation through
`computed(fn, ...)`: in a native thread under eventlet (`eventlet.tpool`), so the green
threads go on meanwhile; directly otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import eventlet
from eventlet import patcher, tpool

P = ParamSpec("P")
T = TypeVar("T")


class InBackground:
    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        if patcher.is_monkey_patched("thread"):
            self._wait = eventlet.spawn(self._run, function, args).wait
        else:
            thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
            thread.start()
            self._wait = thread.join

    def _run(self, function: Callable[..., Any], args: tuple) -> None:
        try:
            self._value = function(*args)
        except BaseException as error:  # handed to whoever asks for the result
            self._error = error

    def done(self) -> None:
        """Wait until it has finished (its error, if any, kept for `result`)."""
        self._wait()

    def result(self) -> Any:
        self.done()
        if self._error is not None:
            raise self._error
        return self._value


@contextmanager
def meanwhile(work: Callable[[], object]) -> Iterator[None]:
    background = InBackground(work)
    try:
        yield
    finally:
        background.done()  # never leave while `work` may still use what the caller owns
    background.result()


def computed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(...)`, pure computation (no I/O, no green locks), where green threads can
    run beside it."""
    if patcher.is_monkey_patched("thread"):
        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)
