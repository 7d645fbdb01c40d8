"""Every test starts from the same dataset registry (tests/conftest.py restores it).

The two tests run in this order: the first registers a dataset the way `rank` and
`transfer` do (zoo.target_store on a UCR archive), the second finds it gone. Without the
restore, that registration outlived its test and changed the tables of every later test
(test_zoo before test_published_reproduction failed).
"""

from __future__ import annotations

from tstransfer import datasets, registry, zoo

from ucr_data import ucr


def test_a_dataset_registered_by_target_store_is_in_the_registry(tmp_path):
    store = zoo.target_store(ucr("GunPoint"), tmp_path)
    assert (store / "zarr.json").is_file()
    assert datasets.is_custom("gunpoint") and registry.DATASETS == (*datasets.BUILTIN, "gunpoint")


def test_the_next_test_starts_from_the_built_in_datasets_alone():
    assert registry.DATASETS == datasets.BUILTIN
    assert "gunpoint" not in datasets.REGISTRY
