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
    if command == "sleep":
        with open(argv[1], "w") as handle:
            handle.write(str(os.getpid()))
        time.sleep(float(argv[2]))
        return 0
    return 99
