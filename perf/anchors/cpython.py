"""The CPython side of the comparison: the same work as the crate's child,
done with CPython's own atexit module.

    cpython.py lifecycle N       register N handlers (the oldest stops the
                                 timer, the newest starts it, N - 2 count
                                 calls between) and let the interpreter
                                 run them at exit
    cpython.py lifecycle-arg N   the same, each count handler registered
                                 with one argument (the closure analogue)
    cpython.py unregister N K    N handlers live, then K distinct functions
                                 registered and unregistered one by one

Prints "key value" lines.
"""

import atexit
import os
import sys
import time

calls = 0


def count():
    global calls
    calls += 1


def count_by(step):
    global calls
    calls += step


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lifecycle(handlers, with_arg):
    started = [0]

    def start():
        started[0] = time.perf_counter_ns()

    def stop():
        elapsed = time.perf_counter_ns() - started[0]
        sys.stdout.write(f"run_ns_per_handler {elapsed / (handlers - 1):.3f}\nran {calls}\n")
        sys.stdout.flush()

    register = atexit.register
    rss_bytes()
    before = rss_bytes()
    register(stop)
    if with_arg:
        t0 = time.perf_counter_ns()
        for _ in range(handlers - 2):
            register(count_by, 1)
        t1 = time.perf_counter_ns()
    else:
        t0 = time.perf_counter_ns()
        for _ in range(handlers - 2):
            register(count)
        t1 = time.perf_counter_ns()
    register(start)
    after = rss_bytes()
    print(f"register_ns {(t1 - t0) / (handlers - 2):.3f}")
    print(f"bytes_per_handler {(after - before) / handlers:.3f}")
    print(f"version {sys.version.split()[0]}")
    sys.stdout.flush()


def make_function():
    def distinct():
        count()

    return distinct


def unregister(live, calls_timed):
    for _ in range(live):
        atexit.register(count)
    functions = [make_function() for _ in range(calls_timed)]
    for function in functions:
        atexit.register(function)
    t0 = time.perf_counter_ns()
    for function in functions:
        atexit.unregister(function)
    t1 = time.perf_counter_ns()
    atexit._clear()
    print(f"unregister_ns {(t1 - t0) / calls_timed:.3f}")
    sys.stdout.flush()


def main():
    mode, *numbers = sys.argv[1:]
    numbers = [int(number) for number in numbers]
    if mode == "lifecycle":
        lifecycle(numbers[0], with_arg=False)
    elif mode == "lifecycle-arg":
        lifecycle(numbers[0], with_arg=True)
    elif mode == "unregister":
        unregister(numbers[0], numbers[1])
    else:
        sys.exit(f"cpython.py: unknown mode {mode}")


main()
