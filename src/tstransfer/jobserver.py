"""A warm fork server for training jobs: pay TensorFlow's import once per workflow run.

Every training job of the DAG is a fresh process, and on this kind of machine a fresh
process spends ~5-10 s importing TensorFlow before it trains for as little as a second
(the demo's jobs, and many small grid cells on a cluster node). With ``job_server: true``
the Snakefile starts one server per workflow run that imports TensorFlow and the
training code once and then forks a child per job. The job's own command stays
``python -m tstransfer.cli ...``: the CLI finds the server through the environment
variable ``TSTRANSFER_JOBSERVER``, passes it its argv, working directory and its stdout
and stderr file descriptors (so the child writes straight into the rule's log), and
waits for the child's exit status. Without a server the CLI runs the job itself, so the
same rule works everywhere.

On a SLURM cluster each job is its own allocation and pays the import once, as before.
A packed allocation (README: ``--groups`` with ``--group-components``) runs several
training jobs in series; there the allocation's batch process starts a server when it
parses the Snakefile
(:func:`packed_training_jobs` finds the group's jobs in its ``--target-jobs``), its jobs'
``srun`` steps inherit the variable, and the server ends with that process: at its exit,
or, if it is killed, when the server sees its parent gone.

Children start from a process that has imported TensorFlow but never run an op, so each
job gets TensorFlow's pristine state (seeds, graphs, thread pools are created in the
child); results are bit-identical to an in-process run (tests/test_jobserver.py).
If the client dies (Snakemake cancels the job), the server kills the child's process group.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence

ENV_VAR = "TSTRANSFER_JOBSERVER"
_MAX_MESSAGE = 1 << 20
log = logging.getLogger("tstransfer.jobserver")


# ----------------------------------------------------------------------------- client
def submit(socket_path: str, argv: Sequence[str]) -> int:
    """Run ``argv`` (CLI arguments) in a child of the server; return its exit status.

    Raises ``ConnectionError`` when no server answers (the server binds its socket before
    anything else, and the Snakefile waits for it, so a missing socket means no server:
    for example a cluster job that inherited the variable), so the caller runs in-process.
    """
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(socket_path)
    except OSError as error:
        client.close()
        raise ConnectionError(f"no job server at {socket_path}: {error}") from error
    with client:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)})
        socket.send_fds(client, [request.encode() + b"\n"], [sys.stdout.fileno(), sys.stderr.fileno()])
        reply = b""
        while not reply.endswith(b"\n"):
            block = client.recv(4096)
            if not block:
                raise ConnectionError(f"job server at {socket_path} closed the connection")
            reply += block
    return int(json.loads(reply)["exit"])


# ----------------------------------------------------------------------------- server
def _resolve(runner: str):
    """``"package.module:function"`` -> the function."""
    import importlib

    module, _, name = runner.partition(":")
    return getattr(importlib.import_module(module), name)


def _run_child(request: dict, fds: list[int], runner: str) -> None:
    """In the forked child: become the job, then exit with its status (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(ENV_VAR, None)  # a job never re-submits itself
        code = _resolve(runner)(request["argv"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - report anything, then exit non-zero
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


_RUNNING: set[int] = set()  # PIDs of the children now running


def _kill_job(pid: int) -> None:
    """Kill a child and everything it started (each child leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _serve_connection(conn: socket.socket, runner: str) -> None:
    with conn:
        message, fds, _flags, _addr = socket.recv_fds(conn, _MAX_MESSAGE, 2)
        while not message.endswith(b"\n"):
            block = conn.recv(_MAX_MESSAGE)
            if not block:
                return
            message += block
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            conn.close()
            _run_child(request, fds, runner)
        _RUNNING.add(pid)
        for fd in fds:
            os.close(fd)
        log.info("job %d started: %s", pid, " ".join(request["argv"][:1] + request["argv"][-2:]))
        # A pidfd turns readable when the child exits, so its end is noticed at once;
        # polling every 0.2 s added 0.1 s to every job on average (bench/job_fixed_cost.py).
        child = _pidfd(pid)
        try:
            _wait_for_child(pid, child, conn)
        finally:
            if child is not None:
                os.close(child)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that turns readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # another OS, an older kernel, a seccomp filter
        return None


def _wait_for_child(pid: int, child: int | None, conn: socket.socket) -> None:
    """Wait for the job ``pid`` (its pidfd ``child``, if any) and send its exit status,
    or kill it when the client of ``conn`` goes away."""
    waitables = [conn] if child is None else [conn, child]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _RUNNING.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            log.info("job %d ended with %d", pid, code)
            conn.sendall(json.dumps({"exit": code if code >= 0 else 128 - code}).encode() + b"\n")
            return
        readable, _, _ = select.select(waitables, [], [], 0.2 if child is None else 1.0)
        if conn in readable and not conn.recv(1, socket.MSG_PEEK):
            # The client went away (Snakemake cancelled the job): stop the child too.
            log.warning("client of job %d disconnected: killing it", pid)
            _kill_job(pid)
            os.waitpid(pid, 0)
            _RUNNING.discard(pid)
            return


DEFAULT_RUNNER = "tstransfer.cli:run_job"
# Everything a training job imports: TensorFlow/Keras above all (most of the ~8 s), the
# training modules, which import Keras lazily inside their functions, and zarr, which the
# store readers import lazily (0.3 s of every child otherwise; bench/job_fixed_cost.py
# lists what a child still imports). Importing zarr starts no thread, so forking stays safe.
DEFAULT_PRELOAD = (
    "tensorflow", "keras", "tcn", "zarr", "tstransfer.cli", "tstransfer.jobs", "tstransfer.models",
    "tstransfer.training", "tstransfer.feed", "tstransfer.transfer", "tstransfer.optim",
    "tstransfer.store",
)


def _exit_when_parent_dies(parent: int, socket_path: str) -> None:
    """End this server when ``parent`` is gone (killed without stopping us first)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("parent process %d is gone: stopping the job server and its jobs", parent)
    for pid in list(_RUNNING):
        _kill_job(pid)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    os._exit(0)


def serve(
    socket_path: str,
    *,
    preload: Sequence[str] = DEFAULT_PRELOAD,
    runner: str = DEFAULT_RUNNER,
    parent: int | None = None,
) -> None:
    """Bind ``socket_path``, import ``preload`` modules, then fork a child per request.

    Each child calls ``runner`` (``"module:function"``, taking the argv list and returning
    an exit status). With ``parent``, the server ends when that process is gone.
    """
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(128)
    if parent is not None:
        threading.Thread(target=_exit_when_parent_dies, args=(parent, socket_path), daemon=True).start()
    started = time.perf_counter()
    import importlib

    for name in preload:
        importlib.import_module(name)
    _resolve(runner)
    # The imports leave millions of long-lived objects; frozen, the children's garbage
    # collections no longer scan them (a full collection took 0.2 s each), and their pages
    # stay shared with the server instead of being touched by the collector.
    gc.freeze()
    log.info("job server ready at %s (imports took %.1f s)", socket_path, time.perf_counter() - started)

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=_serve_connection, args=(conn, runner), daemon=True).start()
    finally:
        server.close()
        if os.path.exists(socket_path):
            os.unlink(socket_path)


class BackgroundServer:
    """A job server started by :func:`start_background`; ``stop()`` ends it."""

    def __init__(self, process, socket_path: str):
        self.process = process
        self.socket_path = socket_path

    def stop(self) -> None:
        os.environ.pop(ENV_VAR, None)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a stuck server must not block the workflow's end
                self.process.kill()


def start_background(log_file: str, *, timeout: float = 60.0) -> BackgroundServer | None:
    """Start a server process, wait for its socket, and export ``TSTRANSFER_JOBSERVER``.

    Child processes started afterwards (the workflow's jobs) inherit the variable. Returns
    None (jobs then run in their own processes) if the server does not come up.
    """
    import subprocess
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"tstransfer-jobserver-{os.getpid()}.sock")
    os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "tstransfer.jobserver", "--socket", path, "--log", log_file,
         "--parent", str(os.getpid())],
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.warning("job server did not start (see %s); jobs run in their own processes", log_file)
            return None
        time.sleep(0.05)
    os.environ[ENV_VAR] = path
    return BackgroundServer(process, path)


def packed_training_jobs(argv: Sequence[str], environ: dict, training_rules: Sequence[str]) -> int:
    """How many training jobs this Snakemake process runs as one packed SLURM allocation.

    Snakemake starts a cluster job as ``snakemake --target-jobs RULE:wildcards ...``: in
    the allocation's batch process (``SLURM_JOB_ID`` set, no ``SLURM_STEP_ID``) a packed
    group lists all its jobs there, and each then runs in its own ``srun`` step, whose
    Snakemake lists one. Returns 0 outside a SLURM batch process. (The Snakefile is
    parsed before Snakemake's DAG settings exist, so the command line is what tells.)
    """
    if not environ.get("SLURM_JOB_ID") or environ.get("SLURM_STEP_ID") is not None:
        return 0
    argv = list(argv)
    if "--target-jobs" not in argv:
        return 0
    count = 0
    for item in argv[argv.index("--target-jobs") + 1:]:
        if item.startswith("-"):
            break
        count += item.partition(":")[0] in training_rules
    return count


def start_for_allocation(argv: Sequence[str], training_rules: Sequence[str], log_dir: str) -> BackgroundServer | None:
    """A server for this packed SLURM allocation if it runs two or more training jobs.

    Its log is ``log_dir/slurm-<job id>.log``. None (no server) anywhere else.
    """
    if packed_training_jobs(argv, os.environ, training_rules) < 2:
        return None
    return start_background(os.path.join(log_dir, f"slurm-{os.environ['SLURM_JOB_ID']}.log"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tstransfer.jobserver", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="UNIX socket path to listen on")
    parser.add_argument("--log", help="log file (default: stderr)")
    parser.add_argument("--preload", action="append", help="module to import before serving (repeatable)")
    parser.add_argument("--runner", default=DEFAULT_RUNNER, help="module:function each child runs")
    parser.add_argument("--parent", type=int, help="end when the process with this PID is gone")
    args = parser.parse_args(argv)
    from . import logs

    logs.setup(args.log)
    serve(args.socket, preload=args.preload or DEFAULT_PRELOAD, runner=args.runner, parent=args.parent)


if __name__ == "__main__":
    main()
