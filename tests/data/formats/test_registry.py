"""The format registry: data.name values, update paths, and a format added by registering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import kaizen.config.data as config_data
from kaizen.config import DataConfig, build_config
from kaizen.data.catalog import load_dataset
from kaizen.data.formats import registry
from kaizen.data.formats.common import build_labelled_data
from kaizen.data.formats.synthetic import make_synthetic
from kaizen.data.imageset import Arrival, ImageShape, LabelledData
from kaizen.data.incoming import read_arrival
from kaizen.errors import ConfigError, DataError

NAMES = (
    "cifar10",
    "cifar100",
    "domain-folder",
    "fashion-mnist",
    "idx",
    "image-folder",
    "mnist",
    "npz",
    "synthetic",
)


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made in the test are undone after it."""
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    monkeypatch.setattr(registry, "UPDATE_FORMATS", dict(registry.UPDATE_FORMATS))
    monkeypatch.setattr(config_data, "DATASET_NAMES", set(config_data.DATASET_NAMES))


def test_every_format_module_registers_its_names_and_update_paths() -> None:
    assert tuple(sorted(registry.DATASETS)) == NAMES
    assert sorted(config_data.DATASET_NAMES) == list(NAMES)
    only_domains = [name for name, found in registry.DATASETS.items() if found.read is None]
    assert only_domains == ["domain-folder"]
    assert registry.DATASETS["domain-folder"].read_domains is not None
    assert sorted(registry.UPDATE_FORMATS) == [".csv", ".npz", registry.FOLDER]


def test_an_unknown_data_name_is_refused_in_one_line_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"data": {"name": "nope"}})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("config value 'data.name' = 'nope': ")
    assert all(repr(name) in message for name in NAMES)


def test_a_domain_folder_outside_a_domain_incremental_stream_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"domain-folder holds one dataset per domain: set scenario"
    ):
        load_dataset(DataConfig(name="domain-folder", path=tmp_path), 0)


@pytest.mark.usefixtures("scratch_registry")
def test_a_registered_reader_is_a_valid_data_name_and_reads_the_data() -> None:
    with pytest.raises(ConfigError, match=r"'data\.name' = 'checkers'"):
        build_config({"data": {"name": "checkers"}})

    @registry.reads("checkers")
    def read_checkers(config: DataConfig, seed: int) -> LabelledData:
        images = np.indices((4, 4)).sum(axis=0) % 2 * 255
        stacked = np.broadcast_to(images.astype(np.uint8), (6, 1, 4, 4))
        labels = np.arange(6) % 2
        return build_labelled_data("checkers", (stacked, labels), (stacked, labels))

    data = load_dataset(build_config({"data": {"name": "checkers"}}).data, seed=0)
    assert data.name == "checkers" and data.class_names == ("0", "1")
    with pytest.raises(ValueError, match="already has the reader"):
        registry.reads("checkers")(lambda config, seed: make_synthetic())


@pytest.mark.usefixtures("scratch_registry")
def test_update_paths_go_to_the_format_that_claims_them(tmp_path: Path) -> None:
    source = tmp_path / "new.txt"
    source.write_text("3")
    with pytest.raises(DataError, match=r"is not a folder, \.csv or \.npz: give <class>/\*"):
        read_arrival(source, ImageShape(1, 2, 2))

    @registry.reads_updates(".txt", layout="a .txt holding one grey level")
    def read_text(path: Path, shape: ImageShape) -> Arrival:
        level = int(path.read_text())
        return Arrival(
            torch.full((1, shape.channels, shape.height, shape.width), level, dtype=torch.uint8),
            (None,),
        )

    arrival = read_arrival(source, ImageShape(1, 2, 2))
    assert arrival.names == (None,) and arrival.images.sum() == 12
    with pytest.raises(DataError, match=r"does not exist: give a folder, \.csv, \.npz or \.txt"):
        read_arrival(tmp_path / "absent.txt", ImageShape(1, 2, 2))
