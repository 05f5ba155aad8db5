"""Domain-incremental streams: domain folders and seeded transforms of one dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import kaizen
from kaizen.config import DataConfig, ScenarioConfig
from kaizen.data.domains import domain_tasks, transformed_domains
from kaizen.data.formats.domain_folder import read_domain_folder
from kaizen.data.formats.synthetic import make_synthetic
from kaizen.errors import ConfigError, DataError

DOMAINS = ["original", "rotated", "inverted", "noisy", "blurred"]


def test_each_transformed_domain_trains_on_its_own_shard_and_tests_on_every_image():
    data = make_synthetic(4, 10, 3, 8, 1, seed=0)
    scenario = ScenarioConfig(kind="domain-incremental", num_tasks=5, domains=DOMAINS)
    domains = transformed_domains(data, scenario, seed=0)
    tasks = domain_tasks(domains, scenario, seed=0)
    assert [len(t.test_indices) for t in tasks] == [len(data.test)] * 5
    # the shards cover the training split once, each class cut evenly across them
    assert sum(len(t.train_indices) for t in tasks) == len(data.train)
    assert all(t.classes == (0, 1, 2, 3) for t in tasks)
    images = domains.data.test.images
    original, rotated, inverted = (images[tasks[k].test_indices] for k in range(3))
    assert torch.equal(original, data.test.images)
    assert torch.equal(rotated, torch.rot90(original, 1, dims=(2, 3)))
    assert torch.equal(inverted, 255 - original)
    noisy = images[tasks[3].test_indices].float()
    assert 20 < (noisy - original.float()).std() < 60


def test_an_unknown_transform_or_a_count_that_is_not_num_tasks_is_refused():
    data = make_synthetic(4, 4, 2, 8, 1, seed=0)
    with pytest.raises(ConfigError, match="unknown domain transform 'sepia'"):
        transformed_domains(data, ScenarioConfig(num_tasks=1, domains=["sepia"]), 0)
    with pytest.raises(ConfigError, match=r"set scenario\.num_tasks=2"):
        transformed_domains(data, ScenarioConfig(num_tasks=3, domains=DOMAINS[:2]), 0)


def _domain_tree(root: Path, domains: dict[str, list[str]]) -> None:
    for domain, classes in domains.items():
        for split in ("train", "val"):
            for c, name in enumerate(classes):
                for i in range(3):
                    path = root / domain / split / name / f"{i}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    pixels = np.full((8, 8), 40 * c + i, dtype=np.uint8)
                    Image.fromarray(pixels).save(path)


def test_a_domain_folder_gives_one_task_per_domain_with_the_same_classes(tmp_path):
    _domain_tree(tmp_path, {"clipart": ["bee", "cat"], "sketch": ["bee", "cat"]})
    scenario = ScenarioConfig(kind="domain-incremental", num_tasks=2, domains=["sketch", "clipart"])
    domains = read_domain_folder(DataConfig(name="domain-folder", path=tmp_path), scenario, 0)
    assert domains.names == ("sketch", "clipart") and domains.data.class_names == ("bee", "cat")
    tasks = domain_tasks(domains, scenario, 0)
    assert [len(t.train_indices) for t in tasks] == [6, 6] and tasks[1].classes == (0, 1)
    assert torch.equal(
        domains.train_domain[tasks[1].train_indices], torch.ones(6, dtype=torch.int64)
    )


def test_domains_with_different_classes_are_refused(tmp_path):
    _domain_tree(tmp_path, {"clipart": ["bee", "cat"], "sketch": ["bee", "dog"]})
    scenario = ScenarioConfig(kind="domain-incremental", num_tasks=2)
    with pytest.raises(DataError, match="needs the same class folders"):
        read_domain_folder(DataConfig(name="domain-folder", path=tmp_path), scenario, 0)


def test_a_domain_incremental_run_states_its_protocol(tiny, tmp_path):
    tree = tiny()
    tree["scenario"] = {"kind": "domain-incremental", "num_tasks": 3, "domains": DOMAINS[:3]}
    tree["eval"] = {"probes": ["knn"]}
    result = kaizen.run(tree, tmp_path)
    assert result.protocol.startswith("domain-incremental, classifier")
    assert result.metrics["final_accuracy"].protocol.startswith("domain-incremental, ")
    assert result.probe_protocols["knn"].startswith("domain-incremental, ")
    assert [task.classes for task in result.tasks] == [tuple(range(6))] * 3
