"""A stand-in job for the job-server tests: behaviour chosen by argv, no TensorFlow."""

import os
import sys
import time


def run(argv):
    command = argv[0]
    if command == "echo":
        print("stdout:", " ".join(argv[1:]), flush=True)
        print("stderr:", os.getcwd(), os.environ.get("JOB_TEST_VALUE"), file=sys.stderr, flush=True)
        return 0
    if command == "fail":
        return int(argv[1])
    if command == "raise":
        raise RuntimeError("job raised on purpose")
    if command == "rendezvous":
        # Write this job's pid file, then wait until every job of the group has written
        # its own: the group can only all succeed if its jobs run at the same time.
        mine, others, timeout = argv[1], argv[2:-1], float(argv[-1])
        with open(mine, "w") as handle:
            handle.write(str(os.getpid()))
        deadline = time.monotonic() + timeout
        while not all(os.path.exists(path) for path in others):
            if time.monotonic() > deadline:
                print("rendezvous: the other jobs never started", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.02)
        return 0
    if command == "sleep":
        with open(argv[1], "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(float(argv[2]))
        return 0
    return 99
