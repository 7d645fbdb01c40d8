"""The `download` rule through Snakemake, against a loopback HTTP server (never the internet).

tests/test_download.py covers tstransfer.download.fetch itself; here a config points a
dataset's download at the server and Snakemake builds that one raw file: the rule passes
the config's URL, size and checksum through to fetch, and a wrong checksum fails the job
with a message that names the file and leaves nothing under the final name.
"""

from __future__ import annotations

import hashlib
import random

import pytest
import yaml
from httpserver import serve
from workflow_runs import planned_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow

NAME = "GSPC.csv"
TARGET = f"resources/raw/sp500/{NAME}"
LOG = f"results/logs/download/sp500/{NAME}.log"


def _csv() -> bytes:
    """A generated S&P 500-like CSV (only its bytes matter to the download)."""
    rng = random.Random(7)
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for day in range(1, 200):
        price = 1000 + rng.random() * 100
        rows.append(f"2000-01-{day:03d},{price:.2f},{price + 1:.2f},{price - 1:.2f},{price:.2f},{price:.2f},{rng.randrange(10**6)}")
    return ("\n".join(rows) + "\n").encode()


DATA = _csv()
SHA = hashlib.sha256(DATA).hexdigest()


def _workdir(tmp_path, url: str, sha256: str) -> None:
    config = tiny_config()
    config["raw_data"] = "download"
    config["datasets"]["sp500"]["files"] = [{"name": NAME, "url": url, "size": len(DATA), "sha256": sha256}]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))


def test_download_rule_fetches_the_configured_file_checksum_verified(tmp_path, bare_env):
    with serve() as server:
        server.files["data/gspc"] = DATA
        _workdir(tmp_path, server.url("data/gspc"), SHA)
        # The raw file alone: one download job, nothing else.
        planned = planned_jobs(snakemake(tmp_path, bare_env, "-n", TARGET).stdout)
        assert planned == [("download", {"dataset": "sp500", "filename": NAME})]
        snakemake(tmp_path, bare_env, "--cores", "1", TARGET)
        assert [request.path for request in server.requests] == ["/data/gspc"]
    target = tmp_path / TARGET
    assert target.read_bytes() == DATA
    # fetch's checksum record beside the file, and nothing else left in the folder
    assert (tmp_path / (TARGET + ".sha256")).read_text() == f"{SHA}  {NAME}\n"
    assert sorted(p.name for p in target.parent.iterdir()) == [NAME, NAME + ".sha256"]
    assert (tmp_path / LOG).is_file()


def test_download_rule_with_a_wrong_checksum_fails_naming_the_file(tmp_path, bare_env):
    wrong = "0" * 64
    with serve() as server:
        server.files[NAME] = DATA
        _workdir(tmp_path, server.url(NAME), wrong)
        done = snakemake(tmp_path, bare_env, "--cores", "1", TARGET, check=False)
        assert len(server.requests) == 1  # it did download, then refused the bytes
    assert done.returncode != 0
    log = (tmp_path / LOG).read_text()
    # the message names the file, the checksum the config expects and the one it got
    assert NAME in log and wrong in log and SHA in log, log
    assert "Error in rule download" in done.stderr + done.stdout
    folder = tmp_path / "resources" / "raw" / "sp500"
    assert not (tmp_path / TARGET).exists()
    # no partial or temporary file under any name in the download folder either
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []
