"""LICENSE and CITATION.cff: present, valid, and in agreement with pyproject.toml and the paper.

CITATION.cff is validated against the CFF 1.2.0 JSON schema, offline, as `cffconvert
--validate` would: cffconvert itself needs jsonschema<4, below snakemake's, so `make
cff-schema` (a step of `make test`) unpacks the schema from the cffconvert 2.0.0 wheel into
resources/cff/, checksum-verified. Without it these tests skip, and fail under CI=true.
"""

from __future__ import annotations

import json
import re
import tomllib

import jsonschema
import tstransfer
import yaml
from shared_data import PAPER_TEXT, require, skip_or_fail
from workflow_runs import ROOT

SCHEMA = ROOT / "resources" / "cff" / "schema-1.2.0.json"


def _schema() -> dict:
    if not SCHEMA.is_file():
        skip_or_fail(f"the CFF 1.2.0 schema is not at {SCHEMA}: run make cff-schema",
                     "make test unpacks the CFF schema first")
    return json.loads(SCHEMA.read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_citation_cff_is_valid_cff_1_2_0():
    schema = _schema()
    citation = _citation()
    assert citation["cff-version"] == "1.2.0"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(citation), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_a_broken_citation_is_refused():
    """The check has teeth: a reference without authors and a misspelt key fail it."""
    schema = _schema()
    citation = _citation()
    del citation["references"][0]["authors"]
    citation["licence"] = "MIT"
    messages = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(citation)]
    assert any("'authors' is a required property" in m for m in messages), messages
    assert any("'licence' was unexpected" in m for m in messages), messages


def test_licence_version_and_authors_agree_with_pyproject():
    citation = _citation()
    (author,) = PYPROJECT["authors"]
    assert citation["license"] == PYPROJECT["license"] == "MIT"
    assert citation["version"] == PYPROJECT["version"]
    assert citation["authors"] == [{"name": author["name"]}]
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n")
    assert re.search(rf"^Copyright \(c\) \d{{4}} {re.escape(author['name'])}$", licence, re.M)
    assert "LICENSE" in PYPROJECT["license-files"]
    # The package's own copy, which the model cards and the archive's RO-Crate carry.
    assert (tstransfer.__license__, tstransfer.__author__) == (PYPROJECT["license"], author["name"])


def test_the_reference_is_the_paper_as_printed():
    """Title and authors (family and given names, in order) as the paper's first page has them."""
    text = require(PAPER_TEXT, "the paper's text").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    title_line = next(i for i, line in enumerate(lines) if line.startswith("Intra-domain"))
    (paper,) = _citation()["references"]
    assert paper["title"] == lines[title_line]
    # "Otović Erik, Njirjak Marko, ...": family name first.
    printed = [name.split(" ", 1) for name in lines[title_line + 1].split(", ")]
    assert [[a["family-names"], a["given-names"]] for a in paper["authors"]] == printed
    assert "doi" not in paper  # the text gives none: nothing invented
