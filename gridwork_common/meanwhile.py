"""Work that waits on a server, run while this process computes.

`with meanwhile(work):` starts `work` in a thread (a green thread where eventlet patched
threading), runs the body, then waits for `work` and raises what it raised (the body's
own exception first). For a round trip whose reply the body does not need (a store of
rows the body only reads, say), so the server and this process work at once; `work`
must not share anything the body changes.

A green thread only runs while the others wait: a body that computes for long would
hold `work`'s sends back until it is done. Such a body runs its computation through
`computed(fn, ...)`, in a native thread under eventlet (`eventlet.tpool`), so the
green threads go on meanwhile; directly otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from eventlet import patcher, tpool

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def meanwhile(work: Callable[[], object]) -> Iterator[None]:
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller, raised there
            failed.append(exc)

    worker = threading.Thread(target=run, name="meanwhile", daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join()  # never leave while `work` may still use what the caller owns
    if failed:
        raise failed[0]


def computed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(...)`, pure computation (no I/O, no green locks), where green threads can
    run beside it."""
    if patcher.is_monkey_patched("thread"):
        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)
