"""The rule for tests of the real reference data: skip without it, except under CI=true."""

import pytest

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from shared_data import require
except ImportError:  # pragma: no cover
    from tests.shared_data import require


def test_missing_reference_data_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    missing = tmp_path / "absent.csv"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"the S&P file not found at .*absent\.csv.*CI=true"):
        require(missing, "the S&P file")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"absent\.csv"):
        require(missing, "the S&P file")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"the S&P file not found at .*absent\.csv"):
        require(missing, "the S&P file")


def test_present_reference_data_is_returned(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    assert require(tmp_path, "a folder") == tmp_path
