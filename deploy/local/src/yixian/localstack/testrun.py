"""``python -m yixian.localstack.testrun``: every test, as ``make test`` runs them.

The stack is brought up once (what was not running is stopped again at the end, unless
``YIXIAN_STACK_KEEP`` is set); the tests run in two passes over it:

1. everything but the ``serial`` tests, spread over pytest-xdist workers, a module to a
   worker (``--dist loadfile``: a module's shared nodes stay in one process). The tests
   are isolated by construction: each has its own databases, topic namespace, ports and
   principals, so they can share the broker and the server.
2. the ``serial`` tests alone: they stop or restart a server of the shared stack.

Extra arguments are passed to both passes (``-x``, ``-k ...``); ``--workers N`` sets the
number of workers (default: the machine's cores).
"""

from __future__ import annotations

import os
import subprocess
import sys

from .stack import LocalStack, StackError

PASSES = (
    ("tests (parallel)", ["-m", "not slow and not serial", "--dist", "loadfile"]),
    ("tests that restart a server of the stack (alone)", ["-m", "serial and not slow"]),
)


def main(argv: list[str]) -> int:
    workers = str(os.cpu_count() or 2)
    if argv[:1] == ["--workers"]:
        workers, argv = argv[1], argv[2:]
    stack = LocalStack.from_env()
    try:
        started = stack.up(report=lambda line: print(line, flush=True))
    except StackError as exc:
        print(exc, file=sys.stderr)
        return 1
    env = {**os.environ, "YIXIAN_STACK_KEEP": "1"}
    status = 0
    try:
        for index, (title, options) in enumerate(PASSES):
            print(f"\n== {title}", flush=True)
            parallel = ["-n", workers] if index == 0 else ["-p", "no:xdist"]
            code = subprocess.call(
                [sys.executable, "-m", "pytest", *parallel, *options, *argv], env=env
            )
            # 5: the pass selected nothing (e.g. a -k that matches no serial test)
            status = status or (0 if code == 5 else code)
    finally:
        if started and not os.environ.get("YIXIAN_STACK_KEEP"):
            for name in started:
                getattr(stack, name).stop()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
