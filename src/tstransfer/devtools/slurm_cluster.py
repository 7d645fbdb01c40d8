"""A real single-node SLURM cluster for the tests and bench/slurm_packing.py: munge, MariaDB, slurmdbd, slurmctld, slurmd.

    python -m tstransfer.devtools.slurm_cluster up   DIR     start one in DIR, print how to use it
    python -m tstransfer.devtools.slurm_cluster down DIR     stop the one started in DIR
    python -m tstransfer.devtools.slurm_cluster run  DIR -- CMD...   run CMD against it (sbatch, sacct, snakemake)

The daemons are Debian's packages (slurm-wlm 22.05; `make slurm-deps` installs them), started
directly as background processes, each stopped by the PID this module started. They run in
a network namespace of their own that has nothing but a loopback interface, so nothing they
open can be reached from outside the machine (slurmctld, slurmd and slurmdbd bind every
interface of their namespace; there is no setting that binds them to loopback). Clients
reach them by running in the same namespace: :meth:`SlurmCluster.command` wraps a command
in ``nsenter`` and sets ``SLURM_CONF``.

The node advertises 16 CPUs, four V100 GPUs and 256 GB (``SlurmdParameters=config_overrides``),
so the profile's real requests (4 CPUs per GPU, 16-32 GB per training job) are granted as
on a cluster. The GPUs are placeholder files: SLURM allocates them and sets
CUDA_VISIBLE_DEVICES, and TensorFlow finds no device and trains on the CPU. There are no
cgroups here, so memory limits are enforced the way SLURM does without them: the
accounting poller kills a job whose RSS exceeds its request (``OverMemoryKill``).

Needs root (daemons, namespaces). Everything lives under DIR; nothing in /etc is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CLUSTER = "tstransfer"
PARTITION = "standard"
ACCOUNT = "tstransfer-ci"
GPUS = 4
BINARIES = ["munged", "mungekey", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "slurmctld", "slurmd",
            "sbatch", "sacct", "sacctmgr", "nsenter", "unshare", "ip"]
PORTS = {"mysql": 3306, "slurmdbd": 6819, "slurmctld": 6817, "slurmd": 6818}


class ClusterError(RuntimeError):
    pass


def missing_requirements() -> list[str]:
    """Why no cluster can start here (empty when it can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("needs root (SLURM daemons and a network namespace)")
    absent = [name for name in BINARIES if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
    if absent:
        reasons.append(f"missing {', '.join(absent)} (`make slurm-deps` installs Debian's packages)")
    return reasons


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


SLURM_CONF = """\
ClusterName={cluster}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={slurmctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/run/slurmctld.pid
SlurmdPidFile={dir}/run/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups on these machines: track processes by parent PID, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# SLURM's own memory enforcement without cgroups: kill a job over its request.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
# Advertise the node as configured, not as probed: 16 CPUs and 4 GPUs on a 2-core machine.
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={slurmdbd}
# For slurmdbd connections this names munge's socket (the default is /run/munge's).
AccountingStoragePass={munge_socket}
AccountingStorageTRES=gres/gpu,gres/gpu:v100
JobCompType=jobcomp/none
# Keep sbatch --comment (the executor plugin writes the rule and wildcards there).
AccountingStoreFlags=job_comment
# Short waits: the tests cancel and time out jobs on purpose.
KillWait=5
MinJobAge=300
InactiveLimit=0
MessageTimeout=20
NodeName=localhost NodeAddr=127.0.0.1 CPUs=16 Boards=1 SocketsPerBoard=1 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=256000 Gres=gpu:v100:{gpus} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

SLURMDBD_CONF = """\
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={slurmdbd}
SlurmUser=root
LogFile={dir}/log/slurmdbd.log
PidFile={dir}/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={mysql}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""


class SlurmCluster:
    """One cluster under ``root``; :meth:`start` and :meth:`stop` bring it up and down."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.conf = self.root / "etc" / "slurm.conf"
        self.pids: dict[str, int] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._pid_file = self.root / "run" / "cluster.json"

    # ------------------------------------------------------------------ clients
    @property
    def netns(self) -> str:
        return f"/proc/{self.pids['namespaces']}/ns/net"

    @property
    def mountns(self) -> str:
        return f"/proc/{self.pids['namespaces']}/ns/mnt"

    def env(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base)
        env.pop("SLURM_CONF", None)  # /etc/slurm in the namespace is this cluster's
        return env

    def command(self, argv: list[str], cwd: str | os.PathLike | None = None) -> list[str]:
        """``argv`` run inside the cluster's namespaces (as every client and daemon is).

        Entering a mount namespace moves to the holder's folder, so the command is given
        ``cwd`` (default: this process's) explicitly.
        """
        wd = os.path.abspath(cwd or os.getcwd())
        return ["nsenter", f"--net={self.netns}", f"--mount={self.mountns}", f"--wd={wd}", "--", *argv]

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("env", self.env())
        return subprocess.run(self.command(argv, kwargs.get("cwd")), check=check, timeout=timeout, text=True,
                              capture_output=True, **kwargs)

    def sacct(self, *fields: str, jobs: list[str] | None = None, extra: list[str] | None = None) -> list[dict]:
        """Accounting records (all steps) as dicts of ``fields``."""
        argv = ["sacct", "--parsable2", "--noheader", "--allusers", "--starttime", "2000-01-01",
                "--format", ",".join(fields), *(extra or [])]
        if jobs:
            argv += ["--jobs", ",".join(jobs)]
        out = self.run(argv).stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]

    def allocations(self, *fields: str, since: int = 0) -> list[dict]:
        """One record per sbatch (``sacct -X``) with job id >= ``since``, oldest first;
        ``JobIDRaw`` is always among the fields."""
        fields = ("JobIDRaw", *(f for f in fields if f != "JobIDRaw"))
        records = [r for r in self.sacct(*fields, extra=["-X"])
                   if r["JobIDRaw"].isdigit() and int(r["JobIDRaw"]) >= since]
        return sorted(records, key=lambda r: int(r["JobIDRaw"]))

    def next_job_id(self) -> int:
        """The id the next sbatch will get at the least: :meth:`allocations` ``since`` it."""
        return max((int(r["JobIDRaw"]) for r in self.allocations()), default=0) + 1

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 120) -> "SlurmCluster":
        reasons = missing_requirements()
        if reasons:
            raise ClusterError("cannot start a SLURM cluster: " + "; ".join(reasons))
        if self.root.exists():
            shutil.rmtree(self.root)
        for sub in ("etc", "run", "log", "state", "spool", "munge", "mysql", "gpu"):
            (self.root / sub).mkdir(parents=True, mode=0o700)
        os.chmod(self.root, 0o755)
        os.chmod(self.root / "munge", 0o711)  # munged: every client must reach its socket
        deadline = time.monotonic() + timeout
        try:
            # A network namespace that has only loopback; a sleeping process holds it open.
            self._spawn("namespaces", ["unshare", "--net", "--mount", "sleep", "infinity"])
            # /proc/PID/ns/* name our own namespaces until unshare has made new ones: wait
            # for both to differ, or the next commands would change this machine's.
            self._wait(self._namespaces_ready, "the namespaces", deadline, "namespaces")
            subprocess.run(self.command(["ip", "link", "set", "lo", "up"]), check=True)
            # getaddrinfo(AI_ADDRCONFIG), which the daemons use to bind, finds no IPv4 on a
            # namespace that has only 127.0.0.1; an address from TEST-NET-1 on the same
            # loopback interface satisfies it and is reachable from nowhere.
            subprocess.run(self.command(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"]), check=True)
            self._start_munge(deadline)
            self._write_configs()
            # Inside the mount namespace our etc/ is /etc/slurm, where every SLURM program
            # looks, also srun inside a job (the executor plugin strips SLURM_CONF).
            subprocess.run(self.command(["mount", "--bind", str(self.conf.parent), "/etc/slurm"]), check=True)
            self._start_mariadb(deadline)
            self._start_daemon("slurmdbd", [_which("slurmdbd"), "-D"], deadline, port=PORTS["slurmdbd"])
            self._register_accounting()
            self._start_daemon("slurmctld", [_which("slurmctld"), "-D", "-i"], deadline, port=PORTS["slurmctld"])
            self._start_daemon("slurmd", [_which("slurmd"), "-D", "-N", "localhost"], deadline)
            self._wait(self._node_idle, "slurmd to register the node as idle", deadline, "slurmd")
        except BaseException:
            self.stop()
            raise
        self._save()
        return self

    def stop(self) -> None:
        """Stop every process this cluster started, by its PID, newest first."""
        if not self.pids and self._pid_file.exists():
            self.pids = json.loads(self._pid_file.read_text())
        for name in reversed(list(self.pids)):
            pid = self.pids[name]
            process = self._processes.get(name)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            else:
                _wait_gone(pid, 20)
        self.pids.clear()
        self._processes.clear()
        self._pid_file.unlink(missing_ok=True)

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ parts
    def _spawn(self, name: str, argv: list[str], *, netns: bool = False, env: dict | None = None) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        if netns:
            argv = self.command(argv)  # nsenter execs the daemon: the PID is the daemon's
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env or self.env(), start_new_session=True)
        log.close()
        self._processes[name] = process
        self.pids[name] = process.pid
        self._save()

    def _wait(self, ready, what: str, deadline: float, name: str | None = None) -> None:
        while not ready():
            process = self._processes.get(name) if name else None
            if process is not None and process.poll() is not None:
                raise ClusterError(f"{name} exited with {process.returncode} while starting; see {self.root}/log/")
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out waiting for {what}; see {self.root}/log/")
            time.sleep(0.2)

    def _namespaces_ready(self) -> bool:
        try:
            return all(os.readlink(path) != os.readlink(f"/proc/self/ns/{kind}")
                       for kind, path in (("net", self.netns), ("mnt", self.mountns)))
        except FileNotFoundError:
            return False

    def _listening(self, port: int) -> bool:
        probe = subprocess.run(self.command(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]),
                               capture_output=True)
        return probe.returncode == 0

    def _start_munge(self, deadline: float) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        os.chmod(key, 0o400)
        self.munge_socket = self.root / "munge" / "munge.socket"
        self._spawn("munged", [
            _which("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
            f"--pid-file={self.root}/munge/munged.pid", f"--log-file={self.root}/log/munged.log",
            f"--seed-file={self.root}/munge/munged.seed",
        ], netns=True)
        self._wait(self.munge_socket.exists, "munged", deadline, "munged")

    def _write_configs(self) -> None:
        values = dict(PORTS, cluster=CLUSTER, partition=PARTITION, gpus=GPUS, dir=self.root,
                      munge_socket=self.munge_socket)
        self.conf.write_text(SLURM_CONF.format(**values))
        dbd = self.root / "etc" / "slurmdbd.conf"
        dbd.write_text(SLURMDBD_CONF.format(**values))
        os.chmod(dbd, 0o600)
        # Placeholder device files: slurmd drops a GPU that has no File=, and nothing
        # under /dev may be claimed on a machine that has no GPU.
        files = []
        for index in range(GPUS):
            path = self.root / "gpu" / f"v100-{index}"
            path.touch()
            files.append(str(path))
        (self.root / "etc" / "gres.conf").write_text(
            "AutoDetect=off\n"
            + "".join(f"NodeName=localhost Name=gpu Type=v100 File={path}\n" for path in files)
        )

    def _start_mariadb(self, deadline: float) -> None:
        data = self.root / "mysql" / "data"
        socket_path = self.root / "mysql" / "mysqld.sock"
        subprocess.run([_which("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True)
        self._spawn("mariadbd", [
            _which("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={socket_path}",
            "--bind-address=127.0.0.1", f"--port={PORTS['mysql']}", "--user=root",
            f"--pid-file={self.root}/mysql/mariadbd.pid", f"--log-error={self.root}/log/mariadbd.log",
            "--innodb-buffer-pool-size=64M", "--skip-log-bin",
        ], netns=True)
        self._wait(socket_path.exists, "mariadbd", deadline, "mariadbd")
        sql = ("CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; "
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;")
        self._wait(lambda: subprocess.run(
            [_which("mariadb"), "--no-defaults", f"--socket={socket_path}", "-uroot", "-e", sql],
            capture_output=True).returncode == 0, "MariaDB to accept SQL", deadline, "mariadbd")

    def _start_daemon(self, name: str, argv: list[str], deadline: float, port: int | None = None) -> None:
        self._spawn(name, argv, netns=True)
        if port is not None:
            self._wait(lambda: self._listening(port), f"{name} on port {port}", deadline, name)

    def _register_accounting(self) -> None:
        for argv in (["sacctmgr", "-i", "add", "cluster", CLUSTER],
                     ["sacctmgr", "-i", "add", "account", ACCOUNT, f"Cluster={CLUSTER}"],
                     ["sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}", f"Cluster={CLUSTER}"]):
            self.run(argv)

    def _node_idle(self) -> bool:
        state = self.run(["sinfo", "--noheader", "--format=%T", "--nodes=localhost"], check=False)
        return state.returncode == 0 and state.stdout.strip() == "idle"

    def _save(self) -> None:
        self._pid_file.write_text(json.dumps(self.pids))


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = SlurmCluster(argv[1])
    if argv[0] == "up":
        cluster.start()
        print(f"SLURM cluster up in {cluster.root} (PIDs {cluster.pids})")
        print(f"use it: python -m tstransfer.devtools.slurm_cluster run {argv[1]} -- sinfo")
        print(f"stop it: python -m tstransfer.devtools.slurm_cluster down {argv[1]}")
        return 0
    if argv[0] == "down":
        cluster.stop()
        return 0
    cluster.pids = json.loads(cluster._pid_file.read_text())
    command = argv[argv.index("--") + 1:] if "--" in argv else argv[2:]
    return subprocess.run(cluster.command(command), env=cluster.env()).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
