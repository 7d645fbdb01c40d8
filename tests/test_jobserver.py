"""The warm job server: jobs run in forked children with the client's output, cwd and env."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tstransfer import jobserver

TESTS = Path(__file__).resolve().parent


@pytest.fixture()
def server(tmp_path):
    sock = str(tmp_path / "js.sock")
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    process = subprocess.Popen(
        [sys.executable, "-m", "tstransfer.jobserver", "--socket", sock,
         "--preload", "jobserver_target", "--runner", "jobserver_target:run",
         "--log", str(tmp_path / "server.log")],
        env=env,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        assert time.monotonic() < deadline, "server did not bind its socket"
        time.sleep(0.05)
    yield sock
    process.terminate()
    process.wait(timeout=10)


def _client(sock, args, cwd, log, extra_env=None):
    """Run the submit side in its own process, stdout/stderr into `log` (as a rule's shell does)."""
    code = (
        "import sys; from tstransfer import jobserver; "
        f"sys.exit(jobserver.submit({sock!r}, {list(args)!r}))"
    )
    with open(log, "w") as handle:
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
            env=dict(os.environ, **(extra_env or {})),
        )


def test_job_output_cwd_env_and_status(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "job.log"
    client = _client(server, ["echo", "hello", "world"], work, log, {"JOB_TEST_VALUE": "42"})
    assert client.wait(timeout=60) == 0
    text = log.read_text()
    assert "stdout: hello world" in text
    assert f"stderr: {work} 42" in text


def test_exit_status_and_exceptions_reach_the_client(server, tmp_path):
    assert _client(server, ["fail", "3"], tmp_path, tmp_path / "a.log").wait(timeout=60) == 3
    raised = _client(server, ["raise"], tmp_path, tmp_path / "b.log")
    assert raised.wait(timeout=60) == 1
    assert "job raised on purpose" in (tmp_path / "b.log").read_text()


def test_parallel_jobs_run_concurrently(server, tmp_path):
    # Each job waits (up to 60 s) until all three have started: run one after another,
    # the first would time out and fail. No wall-clock bound, so a loaded machine is fine.
    pid_files = [str(tmp_path / f"pid{i}") for i in range(3)]
    clients = [
        _client(server, ["rendezvous", mine, *pid_files, "60"], tmp_path, tmp_path / f"{i}.log")
        for i, mine in enumerate(pid_files)
    ]
    assert [c.wait(timeout=120) for c in clients] == [0, 0, 0]
    pids = {Path(path).read_text() for path in pid_files}
    assert len(pids) == 3  # each in its own child


def test_killing_the_client_kills_the_job(server, tmp_path):
    pid_file = tmp_path / "pid"
    client = _client(server, ["sleep", str(pid_file), "60"], tmp_path, tmp_path / "k.log")
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pid_file.read_text())
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists():
        assert time.monotonic() < deadline, "the job outlived its client"
        time.sleep(0.1)


def test_no_server_raises_connection_error(tmp_path):
    with pytest.raises(ConnectionError, match="no job server"):
        jobserver.submit(str(tmp_path / "absent.sock"), ["echo"])


def test_a_packed_allocation_is_told_by_its_batch_process_target_jobs():
    from tstransfer.jobserver import packed_training_jobs
    from workflow_runs import TRAINING_KINDS as rules
    argv = ["snakemake", "--snakefile", "S", "--target-jobs",
            "finetune:arch=a,omega=0.5", "finetune:arch=a,omega=1.0", "select_pretrained:arch=a",
            "--allowed-rules", "finetune", "--cores", "all"]
    batch = {"SLURM_JOB_ID": "7"}
    assert packed_training_jobs(argv, batch, rules) == 2  # the select job is no training job
    # an srun step of the same allocation runs one job: no second server there
    assert packed_training_jobs(argv, {**batch, "SLURM_STEP_ID": "0"}, rules) == 0
    assert packed_training_jobs(argv, {}, rules) == 0  # not in SLURM
    assert packed_training_jobs(["snakemake", "--cores", "2"], batch, rules) == 0
    one = ["snakemake", "--target-jobs", "referent:arch=a,run=0", "--cores", "all"]
    assert packed_training_jobs(one, batch, rules) == 1


def test_the_server_ends_with_its_parent(tmp_path):
    """A server whose parent dies without stopping it (a killed allocation's Snakemake)
    removes its socket and exits by itself."""
    import subprocess
    import sys
    import time

    socket_path = tmp_path / "s.sock"
    # the parent: a shell that starts the server in the background, then exits at once
    script = (f"{sys.executable} -m tstransfer.jobserver --socket {socket_path} --preload json "
              f"--parent $$ & sleep 3")
    parent = subprocess.Popen(["bash", "-c", script])
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        assert time.monotonic() < deadline, "server never bound its socket"
        time.sleep(0.05)
    parent.wait()
    deadline = time.monotonic() + 30
    while socket_path.exists():
        assert time.monotonic() < deadline, "server outlived its parent"
        time.sleep(0.1)


@pytest.mark.parametrize("use_pidfd", [True, False])
def test_the_server_reports_a_jobs_exit_status(tmp_path, monkeypatch, use_pidfd):
    """The wait for a child: through its pidfd (readable the moment it exits, so the
    client hears at once), or by polling where the OS has none; both report the status."""
    import socket

    if not use_pidfd:
        monkeypatch.setattr(jobserver, "_pidfd", lambda pid: None)
    server_end, client_end = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        time.sleep(0.3)
        os._exit(7)
    child = jobserver._pidfd(pid)
    assert (child is not None) == use_pidfd
    try:
        jobserver._wait_for_child(pid, child, server_end)
    finally:
        if child is not None:
            os.close(child)
    assert client_end.recv(100) == b'{"exit": 7}\n'
    server_end.close()
    client_end.close()


def test_a_training_job_does_not_import_the_zoo():
    """The zoo package (statsmodels, scipy.optimize: ~0.8 s) is not in the job server's
    preload; a training job that imported it paid that in every forked child."""
    code = (
        "import argparse, sys\n"
        "from tstransfer import cli\n"
        "assert cli._one_line_errors(lambda a: 0, argparse.Namespace(command='finetune'), False) == 0\n"
        "assert 'tstransfer.zoo' not in sys.modules, 'a training job imported the zoo'\n"
        "assert cli._one_line_errors(lambda a: 0, argparse.Namespace(command='rank'), False) == 0\n"
        "assert 'tstransfer.zoo' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
