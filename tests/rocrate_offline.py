"""roc-validator, offline: its HTTP cache seeded with the RO-Crate JSON-LD contexts from
``../shared/data/ro-crate`` (that folder's README), then ``rocrate-validator validate
--offline`` run as a user runs it.

The validator fetches each context by its URL through a ``requests_cache`` session (SQLite
backend, key: method + URL). :func:`seed_cache` makes the same kind of session, whose
transport answers those URLs from the files, and GETs each one: the cache then holds them,
and the offline validator finds every context there. Without the files or the validator a
test skips, naming what is missing; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from shared_data import RO_CRATE_CONTEXTS, require, skip_or_fail

CONTEXTS = {
    "https://w3id.org/ro/crate/1.1/context": "context-1.1.jsonld",
    "https://w3id.org/ro/crate/1.3/context": "context-1.3.jsonld",
    "https://w3id.org/ro/terms/workflow-run/context": "workflow-run-context.jsonld",
}


def validator() -> list[str]:
    """The ``rocrate-validator`` command, run by this interpreter (roc-validator: dev extra)."""
    if find_spec("rocrate_validator") is None or find_spec("requests_cache") is None:
        skip_or_fail("roc-validator (rocrate-validator) is not installed (pyproject.toml's dev extra)",
                     "the dev extra must be installed")
    return [sys.executable, "-c", "from rocrate_validator.cli import cli; cli(prog_name='rocrate-validator')"]


def seed_cache(cache: Path) -> Path:
    """An HTTP cache for ``--cache-path`` holding the contexts; returns ``cache``."""
    from requests.adapters import HTTPAdapter
    from requests_cache import CachedSession
    from urllib3.response import HTTPResponse

    files = {url: require(RO_CRATE_CONTEXTS / name, f"the RO-Crate context for {url}")
             for url, name in CONTEXTS.items()}

    class FromFiles(HTTPAdapter):
        def send(self, request, **kwargs):
            if request.url not in files:
                raise ConnectionError(f"offline: {request.url} is not a seeded context")
            data = files[request.url].read_bytes()
            raw = HTTPResponse(body=io.BytesIO(data), status=200, preload_content=False, decode_content=False,
                               request_url=request.url,
                               headers={"Content-Type": "application/ld+json", "Content-Length": str(len(data))})
            return self.build_response(request, raw)

    # The settings the validator's own session has (rocrate_validator.utils.http).
    session = CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1,
                            allowable_methods=("GET",), allowable_codes=(200, 302, 404))
    session.mount("https://", FromFiles())
    session.mount("http://", FromFiles())
    for url in files:
        response = session.get(url)
        assert response.status_code == 200 and session.cache.contains(url=url), url
    session.close()
    return cache


def validate(crate: Path, profile: str, cache: Path, report: Path) -> dict:
    """``rocrate-validator validate --offline -p profile`` on the crate folder; its JSON report."""
    done = subprocess.run(
        [*validator(), "validate", "--offline", "--cache-path", str(cache), "-p", profile,
         "--no-paging", "-f", "json", "-o", str(report), str(crate)],
        capture_output=True, text=True, timeout=600,
    )
    assert report.is_file(), f"no report from rocrate-validator (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    result = json.loads(report.read_text())
    result["exit_code"] = done.returncode
    return result


def assert_every_required_check_passes(result: dict, profile: str) -> None:
    """Passed, every check REQUIRED, none failed, none skipped, and the profile among those run."""
    stats = result["statistics"]
    issues = [f"{i.get('check', {}).get('identifier') if isinstance(i.get('check'), dict) else i.get('check')}: "
              f"{i.get('message')}" for i in result.get("issues", [])]
    assert result["passed"] and result["exit_code"] == 0, "\n".join(issues[:30])
    assert profile in stats["profiles"], stats["profiles"]
    assert result["skipped_checks"] == 0 and stats["total_skipped_checks"] == 0, result.get("skipped_check_details")
    assert stats["total_failed_checks"] == 0 and stats["total_checks"] > 0
    assert stats["total_passed_checks"] == stats["total_checks"] == stats["total_checks_by_severity"]["REQUIRED"]
