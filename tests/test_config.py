"""Run configuration: override parsing, validation messages, YAML loading and the presets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from kaizen.config import (
    BarlowSettings,
    RunConfig,
    SimSiamSettings,
    build_config,
    load_yaml,
    parse_override,
)
from kaizen.errors import ConfigError
from kaizen.methods.strategies.lump import LumpSettings
from kaizen.presets import load_preset, preset_names

# ---------------------------------------------------------------------------- parse_override


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("train.epochs=3", ["train", "epochs"], 3),
        ("optim.lr=0.25", ["optim", "lr"], 0.25),
        ("optim.weight_decay=1.0e-4", ["optim", "weight_decay"], 1e-4),
        ("train.progress=false", ["train", "progress"], False),
        ("name=my-run", ["name"], "my-run"),
        ("model.classifier_hidden_dim=null", ["model", "classifier_hidden_dim"], None),
        ("augment.crop_scale=[0.2, 1.0]", ["augment", "crop_scale"], [0.2, 1.0]),
        ("scenario.class_order=[[0, 1], [2]]", ["scenario", "class_order"], [[0, 1], [2]]),
        ("data.synthetic.channels=1", ["data", "synthetic", "channels"], 1),
        (" train.epochs =7", ["train", "epochs"], 7),
        ("train.precision='32'", ["train", "precision"], "32"),
        ("data.path=", ["data", "path"], None),
    ],
)
def test_parse_override_splits_key_and_parses_value_as_yaml(text, path, value):
    parsed_path, parsed_value = parse_override(text)
    assert parsed_path == path
    assert parsed_value == value
    assert type(parsed_value) is type(value)


@pytest.mark.parametrize("text", ["train.epochs", "=3", "  =3", ""])
def test_parse_override_rejects_text_without_key_and_value(text):
    with pytest.raises(ConfigError, match="key=value"):
        parse_override(text)


def test_parse_override_rejects_invalid_yaml():
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_override("train.epochs=[1")


def test_parse_override_invalid_yaml_message_is_one_line():
    with pytest.raises(ConfigError) as caught:
        parse_override("train.epochs=[1")
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------- build_config


def test_build_config_defaults_are_the_paper_values():
    config = build_config({})
    assert isinstance(config, RunConfig)
    assert config.strategy.name == "kaizen"
    assert config.strategy.classifier_distill_weight == 2.0
    assert config.strategy.feature_distill_weight is None
    assert config.optim.lars_eta == 0.02
    assert config.scenario.num_tasks == 5


def test_build_config_applies_nested_overrides_over_the_tree():
    tree = {"train": {"epochs": 10, "batch_size": 64}, "data": {"name": "synthetic"}}
    config = build_config(
        tree,
        [
            "train.epochs=3",
            "data.synthetic.num_classes=4",
            "optim.lr=0.5",
            "scenario.label_fraction=[0.5, 1.0]",
            "scenario.num_tasks=2",
        ],
    )
    assert config.train.epochs == 3  # override wins over the tree
    assert config.train.batch_size == 64  # sibling in the tree kept
    assert config.data.name == "synthetic"
    assert config.data.synthetic.num_classes == 4  # section created two levels deep
    assert config.data.synthetic.train_per_class == 64  # its other fields keep their defaults
    assert config.optim.lr == 0.5
    assert config.scenario.label_fraction == [0.5, 1.0]
    assert config.scenario.label_fraction_of(0) == 0.5
    assert config.scenario.label_fraction_of(1) == 1.0


def test_later_override_of_the_same_key_wins():
    config = build_config({}, ["train.epochs=3", "train.epochs=4"])
    assert config.train.epochs == 4


def test_build_config_does_not_mutate_the_input_tree():
    tree = {"train": {"epochs": 10}, "scenario": {"num_tasks": 2, "class_order": [[0], [1]]}}
    before = copy.deepcopy(tree)
    config = build_config(tree, ["train.epochs=3", "optim.lr=0.5", "scenario.num_tasks=2"])
    assert config.train.epochs == 3
    assert tree == before
    assert "optim" not in tree


def test_single_label_fraction_applies_to_every_task():
    config = build_config({}, ["scenario.label_fraction=0.25"])
    assert [config.scenario.label_fraction_of(t) for t in range(5)] == [0.25] * 5


# ---------------------------------------------------------------------------- error messages


def _error_of(tree: dict, overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        build_config(tree, overrides)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("override", "unknown", "suggestion"),
    [
        ("train.epoch=3", "train.epoch", "train.epochs"),
        ("trian.epochs=3", "trian", "train"),
        ("data.synthetic.num_class=3", "data.synthetic.num_class", "data.synthetic.num_classes"),
        ("optim.classifer_lr=0.1", "optim.classifer_lr", "optim.classifier_lr"),
    ],
)
def test_unknown_override_key_names_the_key_and_suggests_a_close_one(override, unknown, suggestion):
    message = _error_of({}, [override])
    assert f"'{unknown}'" in message
    assert f"did you mean '{suggestion}'" in message


def test_unknown_key_in_the_tree_names_the_key_and_suggests_a_close_one():
    message = _error_of({"train": {"epoch": 3}}, [])
    assert "'train.epoch'" in message
    assert "did you mean 'train.epochs'" in message


def test_key_below_a_plain_value_is_unknown():
    message = _error_of({}, ["train.epochs.max=3"])
    assert "'train.epochs.max'" in message


def test_unknown_key_without_close_match_has_no_suggestion():
    message = _error_of({}, ["zzzzzzzz=1"])
    assert "'zzzzzzzz'" in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("override", "key", "shown"),
    [
        ("train.epochs=abc", "train.epochs", "'abc'"),
        ("train.epochs=-1", "train.epochs", "-1"),
        ("train.epochs=0", "train.epochs", "0"),
        ("train.batch_size=1", "train.batch_size", "1"),
        ("optim.lr=0", "optim.lr", "0"),
        ("optim.momentum=1.0", "optim.momentum", "1.0"),
        ("replay.fraction_per_class=1.5", "replay.fraction_per_class", "1.5"),
        ("strategy.name=ewc", "strategy.name", "'ewc'"),
        ("ssl.method=swav", "ssl.method", "'swav'"),
        ("train.progress=[1, 2]", "train.progress", "[1, 2]"),
    ],
)
def test_wrong_type_or_out_of_range_value_names_the_key_and_the_value(override, key, shown):
    message = _error_of({}, [override])
    assert f"'{key}'" in message
    assert shown in message


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["scenario.label_fraction=1.5"], ["label_fraction", "1.5"]),
        (["scenario.label_fraction=-0.1"], ["label_fraction", "-0.1"]),
        (["scenario.num_tasks=2", "scenario.label_fraction=[0.5, 2.0]"], ["label_fraction", "2.0"]),
        (["augment.crop_scale=[0.5, 0.2]"], ["crop_scale", "(0.5, 0.2)"]),
        (["augment.crop_scale=[0.0, 1.0]"], ["crop_scale"]),
        (["augment.crop_scale=[0.5, 1.5]"], ["crop_scale"]),
        (["augment.solarize_prob=[0.0, 1.2]"], ["solarize_prob"]),
        # one value per task, or one for all
        (["scenario.num_tasks=3", "scenario.label_fraction=[0.5, 1.0]"], ["label_fraction", "3"]),
        (["scenario.num_tasks=3", "scenario.class_order=[[0], [1]]"], ["class_order", "3"]),
    ],
)
def test_invalid_section_values_give_a_one_line_message_naming_the_key(overrides, words):
    message = _error_of({}, overrides)
    for word in words:
        assert word in message


def test_matching_list_lengths_are_accepted():
    config = build_config(
        {},
        [
            "scenario.num_tasks=2",
            "scenario.label_fraction=[0.1, 0.0]",
            "scenario.class_order=[[0, 1], [2, 3]]",
        ],
    )
    assert config.scenario.label_fraction == [0.1, 0.0]
    assert config.scenario.class_order == [[0, 1], [2, 3]]


@pytest.mark.parametrize("fraction", ["0", "1", "0.0", "1.0"])
def test_label_fraction_bounds_are_inclusive(fraction):
    config = build_config({}, [f"scenario.label_fraction={fraction}"])
    assert config.scenario.label_fraction == float(fraction)


def test_precision_32_is_accepted_as_an_override():
    assert build_config({}, ["train.precision=32"]).train.precision == "32"


# ---------------------------------------------------------------------------- load_yaml


def test_load_yaml_reads_a_mapping(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 2\nname: x\n")
    assert load_yaml(path) == {"train": {"epochs": 2}, "name": "x"}


def test_load_yaml_of_an_empty_file_is_an_empty_tree(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_yaml(path) == {}


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a string\n", "3\n"])
def test_load_yaml_rejects_a_file_that_is_not_a_mapping(tmp_path: Path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="mapping") as caught:
        load_yaml(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_yaml_rejects_invalid_yaml(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [1\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_yaml(path)
    assert str(path) in str(caught.value)


def test_load_yaml_invalid_yaml_message_is_one_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: [1\n  epochs: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert "\n" not in str(caught.value)


def test_load_yaml_of_a_missing_file_is_a_config_error(tmp_path: Path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_yaml(path)
    assert str(path) in str(caught.value)


def test_load_yaml_does_not_construct_python_objects(tmp_path: Path):
    path = tmp_path / "unsafe.yaml"
    path.write_text("name: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError):
        load_yaml(path)


# ---------------------------------------------------------------------------- presets

PAPER_SSL = ("simclr", "mocov2plus", "byol", "vicreg")
SSL_METHODS = (*PAPER_SSL, "simsiam", "barlow")
STRATEGIES = ("finetune", "cassle", "kaizen", "kaizen-replay-kd", "kaizen-refit", "lump")
PAPER_PRESETS = [f"cifar100-{ssl}-{strategy}" for ssl in SSL_METHODS for strategy in STRATEGIES]
CIFAR10_PRESETS = [f"cifar10-{ssl}-{strategy}" for ssl in SSL_METHODS for strategy in STRATEGIES]
FMNIST_PRESETS = [f"fmnist-{ssl}-{strategy}" for ssl in SSL_METHODS for strategy in STRATEGIES]
KAIZEN_STRATEGIES = STRATEGIES[:-1]
KAIZEN_PAPER_PRESETS = [name for name in PAPER_PRESETS if not name.endswith("-lump")]
"""The Kaizen paper's setting; the LUMP presets carry LUMP's."""
SLCA_BENCHMARKS = ("cifar100", "imagenetr", "cub200", "cars196")
"""The paper's benchmarks; the SLCA family also has the CPU demonstration on Fashion-MNIST."""
SLCA_PRESETS = [
    f"slca-{benchmark}-{strategy}"
    for benchmark in (*SLCA_BENCHMARKS, "fmnist")
    for strategy in ("seqft", "sl", "slca", "slcapp", "joint")
]


SLCA_MOCOV3_PRESETS = [
    f"slca-{benchmark}-mocov3-{strategy}"
    for benchmark in SLCA_BENCHMARKS
    for strategy in ("seqft", "sl", "slca", "slcapp", "joint")
]
"""The same benchmarks from the paper's second pre-training, MoCo v3."""


def test_preset_names_are_the_demo_the_three_families_and_slcas_benchmarks():
    names = preset_names()
    assert names[:2] == ["demo", "fmnist-domains"]
    slca = SLCA_PRESETS + SLCA_MOCOV3_PRESETS
    assert sorted(names[2:]) == sorted(PAPER_PRESETS + CIFAR10_PRESETS + FMNIST_PRESETS + slca)
    assert len(set(names)) == 2 + 3 * len(SSL_METHODS) * len(STRATEGIES) + len(slca)


RELEASED_SLCA = {
    "train.precision": "32",
    "optim.weight_decay_on": "all",
    "classifier.align_sampling": "epoch",
    "classifier.align_batch_size": 256,
    "classifier.align_schedule": "epoch",
    "classifier.align_from_task": 1,
    "eval.classes": "seen",
}
"""What SLCA's released code runs, in every slca-* paper preset (docs/parity.md)."""
RELEASED_SLCAPP = {
    "strategy.lora_targets": ["qkv"],
    "optim.lr_bounds": "absolute",
    "optim.lr_update": "epoch",
}
"""What SLCA++'s released code runs besides."""
IMAGENET_NORMALISATION = {
    "data.normalize_mean": (0.485, 0.456, 0.406),
    "data.normalize_std": (0.229, 0.224, 0.225),
}
FIXED_SCALE_CROP = {"augment.crop": "resize-then-crop", "augment.resize_to": 300}
RELEASED_SLCA_TRANSFORMS = {
    "cifar100": {
        "data.normalize_mean": (0.5071, 0.4867, 0.4408),
        "data.normalize_std": (0.2675, 0.2565, 0.2761),
        "augment.crop": "random-resized",
        "augment.brightness": pytest.approx(63 / 255),
        "augment.contrast": 0.0,
        "augment.saturation": 0.0,
        "augment.hue": 0.0,
        "augment.jitter_prob": 1.0,
    },
    "imagenetr": {**IMAGENET_NORMALISATION, "augment.crop": "random-resized"},
    "cub200": {**IMAGENET_NORMALISATION, **FIXED_SCALE_CROP},
    "cars196": {**IMAGENET_NORMALISATION, **FIXED_SCALE_CROP},
}
"""Each benchmark's released training transform and normalisation (bicubic everywhere)."""


@pytest.mark.parametrize(
    "name", [name for name in SLCA_PRESETS + SLCA_MOCOV3_PRESETS if "-fmnist-" not in name]
)
def test_slca_paper_presets_run_what_the_released_code_ran(name):
    config = build_config(load_preset(name))
    benchmark = name.split("-")[1]
    expected = {
        **RELEASED_SLCA,
        **RELEASED_SLCA_TRANSFORMS[benchmark],
        "augment.crop_interpolation": "bicubic",
        "augment.test_interpolation": "bicubic",
    }
    if config.strategy.name == "slcapp":
        expected |= RELEASED_SLCAPP
        # SLCA++ trains and aligns Cars and ImageNet-R without weight decay
        expected["classifier.align_weight_decay"] = (
            0.0 if benchmark in ("cars196", "imagenetr") else 5e-4
        )
    elif config.strategy.name != "joint":
        expected["classifier.align_weight_decay"] = 5e-4
    for dotted, value in expected.items():
        assert _setting(config, dotted) == value, dotted


# benchmark: (data, classes per task or None, epochs, milestones, SCE alpha and beta,
# alignment temperature, SLCA++'s weight decay), from SLCA's and SLCA++'s experiment files
SLCA_SETTINGS = {
    "cifar100": ("cifar100", None, 20, [18], (1.0, 0.1), 0.1, 5e-4),
    "imagenetr": ("image-folder", None, 50, [40], (0.5, 0.5), 0.1, 0.0),
    "cub200": ("image-folder", None, 50, [40], (1.0, 0.1), 0.1, 5e-4),
    "cars196": ("image-folder", 20, 50, [40], (0.5, 0.5), 0.05, 0.0),
}


@pytest.mark.parametrize("benchmark", SLCA_BENCHMARKS)
def test_slca_presets_carry_each_benchmarks_settings(benchmark):
    data, per_task, epochs, milestones, sce, temperature, slcapp_decay = SLCA_SETTINGS[benchmark]
    slca = build_config(load_preset(f"slca-{benchmark}-slca"))
    slcapp = build_config(load_preset(f"slca-{benchmark}-slcapp"))
    joint = build_config(load_preset(f"slca-{benchmark}-joint"))
    for config in (slca, slcapp, joint):
        assert config.data.name == data and config.scenario.classes_per_task == per_task
        assert (config.train.epochs, config.optim.milestones) == (epochs, milestones)
        assert config.strategy.end_to_end
        assert config.classifier.align_temperature == temperature
        assert (config.seed, config.scenario.class_permutation) == (1993, "numpy")
        assert (config.model.backbone, config.model.image_size, config.ssl.method) == (
            "vit_base",
            224,
            "none",
        )
        assert config.model.weights is not None and config.train.batch_size == 128
    # the slow learner: backbone 1e-4 against heads 1e-2, SGD with a step schedule
    for config in (slca, slcapp):  # the benchmark's loss weights, which joint does not have
        assert (config.strategy.sce_alpha, config.strategy.sce_beta) == sce
    assert "sce_alpha" not in type(joint.strategy).model_fields
    assert (slca.optim.name, slca.optim.lr, slca.optim.classifier_lr) == ("sgd", 1e-4, 1e-2)
    assert (slca.optim.schedule, slca.optim.weight_decay) == ("step", 5e-4)
    # SLCA++: the backbone's norms and biases at 1e-3, cosine, its own weight decay
    assert (slcapp.optim.lr, slcapp.optim.schedule) == (1e-3, "cosine")
    assert slcapp.optim.weight_decay == slcapp_decay
    assert (slca.model.heads, slcapp.model.heads, joint.model.heads) == (
        "per-task",
        "per-task",
        "single",
    )


def test_the_slca_cpu_demonstration_starts_from_the_projects_own_pretrained_vit():
    slcapp = build_config(load_preset("slca-fmnist-slcapp"))
    assert (slcapp.data.name, slcapp.scenario.num_tasks) == ("fashion-mnist", 5)
    assert (slcapp.model.backbone, slcapp.model.patch_size) == ("vit_tiny", 7)
    assert str(slcapp.model.weights) == "runs/pretrained/vit"
    assert slcapp.train.accelerator == "cpu" and slcapp.strategy.name == "slcapp"


def test_lump_presets_carry_the_papers_settings():
    cifar100 = build_config(load_preset("cifar100-simclr-lump"))
    cifar10 = build_config(load_preset("cifar10-simclr-lump"))
    assert (cifar100.scenario.num_tasks, cifar10.scenario.num_tasks) == (20, 5)
    assert (cifar100.data.name, cifar10.data.name) == ("cifar100", "cifar10")
    for config in (cifar100, cifar10):
        assert (config.optim.name, config.optim.lr, config.optim.weight_decay) == (
            "sgd",
            0.03,
            5e-4,
        )
        assert config.train.epochs == 200 and config.model.backbone == "resnet18"
        assert config.strategy.buffer_size == 256 and "knn-task" in config.eval.probes
    # the split CIFAR-10 family is the CIFAR-100 one on other data
    kaizen10 = build_config(load_preset("cifar10-simclr-kaizen"))
    kaizen100 = build_config(load_preset("cifar100-simclr-kaizen"))
    assert kaizen10.optim == kaizen100.optim and kaizen10.scenario.num_tasks == 5


LUMP_PRESETS = [
    name for name in (*PAPER_PRESETS, *CIFAR10_PRESETS, *FMNIST_PRESETS) if name.endswith("-lump")
]


@pytest.mark.parametrize("name", LUMP_PRESETS)
def test_lump_presets_run_what_lumps_released_code_ran(name):
    """divyam3897/UCL at cfaa81d: models/mixup.py, utils/buffer.py, models/barlowtwins.py,
    models/simsiam.py, augmentations/simsiam_aug.py, models/utils/continual_model.py, main.py,
    tools/knn_monitor.py and its configs."""
    config = build_config(load_preset(name))
    optim, augment, lump, evaluation = config.optim, config.augment, config.strategy, config.eval
    assert (optim.name, optim.lr, optim.weight_decay, optim.momentum) == ("sgd", 0.03, 5e-4, 0.9)
    assert (optim.schedule, optim.warmup_epochs, optim.scale_lr_by_batch) == ("constant", 0, True)
    assert augment.crop_scale == (0.2, 1.0) and augment.hflip_prob == 0.5
    jitter = (augment.brightness, augment.contrast, augment.saturation, augment.hue)
    assert jitter == (0.4, 0.4, 0.4, 0.1)
    assert (augment.jitter_prob, augment.grayscale_prob) == (0.8, 0.2)
    assert augment.solarize_prob == augment.blur_prob == (0.0, 0.0)
    assert config.train.precision == "32"
    assert config.model.batchnorm_views == "per-view"  # one pass per view
    assert augment.crop_interpolation == "bilinear"
    if config.data.name.startswith("cifar"):  # its ResNet-18's stem, its constants
        assert config.model.stem_padding is None
        assert config.data.normalize_std == (0.2470, 0.2435, 0.2615)
    assert isinstance(lump, LumpSettings)
    assert (lump.buffer_size, lump.alpha) == (256, 0.4)
    assert (lump.buffer_update, lump.buffer_views) == ("step", "stored")
    assert (evaluation.knn_k, evaluation.knn_k_cap, evaluation.knn_temperature) == (
        200,
        "tasks-seen",
        0.1,
    )
    assert "knn-task" in evaluation.probes and evaluation.forgetting == "just-learned"
    ssl = config.ssl
    if isinstance(ssl, SimSiamSettings | BarlowSettings):
        assert (ssl.proj_hidden_layers, ssl.proj_output_norm) == (1, "affine-batchnorm")
    if isinstance(ssl, BarlowSettings):
        assert (ssl.off_diagonal_weight, ssl.loss_scale) == (5e-3, 1.0)
        assert ssl.std_estimator == "unbiased"


def test_only_lump_presets_take_lumps_settings():
    barlow = build_config(load_preset("cifar100-barlow-kaizen"))
    assert isinstance(barlow.ssl, BarlowSettings)
    assert (barlow.ssl.loss_scale, barlow.ssl.std_estimator) == (0.025, "biased-eps")
    assert (barlow.ssl.proj_hidden_layers, barlow.ssl.proj_output_norm) == (2, "none")
    assert (barlow.optim.name, barlow.optim.schedule) == ("lars", "cosine")
    assert (barlow.eval.forgetting, barlow.eval.knn_k_cap) == ("max", "none")
    assert barlow.train.precision == "16-mixed"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.schedule=linear", "optim.schedule"),
        ("eval.forgetting=last", "eval.forgetting"),
        ("eval.knn_k_cap=all", "eval.knn_k_cap"),
        ("ssl.std_estimator=population", "ssl.std_estimator"),
        ("ssl.proj_hidden_layers=0", "ssl.proj_hidden_layers"),
    ],
)
def test_lumps_options_refuse_a_bad_value_in_one_line(override, key):
    assert key in _error_of(load_preset("cifar100-barlow-lump"), [override])


@pytest.mark.parametrize(
    "name",
    ["demo", "fmnist-domains", *PAPER_PRESETS, *CIFAR10_PRESETS, *FMNIST_PRESETS, *SLCA_PRESETS],
)
def test_every_preset_validates(name):
    config = build_config(load_preset(name))
    assert config.name == name


def test_the_demo_is_the_fashion_mnist_simclr_kaizen_preset():
    demo = build_config(load_preset("demo"))
    family = build_config(load_preset("fmnist-simclr-kaizen"))
    assert demo.model_copy(update={"name": family.name}) == family
    assert demo.data.name == "fashion-mnist" and demo.train.accelerator == "cpu"


def test_vicreg_overlay_applies_to_every_family():
    assert build_config(load_preset("fmnist-vicreg-kaizen")).optim.lr == pytest.approx(0.3)
    assert build_config(load_preset("fmnist-byol-kaizen")).optim.lr == pytest.approx(1.0)


@pytest.mark.parametrize("name", KAIZEN_PAPER_PRESETS)
def test_paper_presets_name_their_method_and_strategy(name):
    _, ssl, strategy = name.split("-", 2)
    config = build_config(load_preset(name))
    assert config.ssl.method == ssl
    assert config.strategy.name == strategy
    assert config.data.name == "cifar100"
    assert config.scenario.num_tasks == 5
    assert config.model.backbone == "resnet18"
    assert config.train.epochs == 500
    assert config.train.batch_size == 256
    assert config.replay.fraction_per_class == 0.01
    assert config.optim.lars_eta == 0.02


@pytest.mark.parametrize("strategy", KAIZEN_STRATEGIES)
def test_vicreg_presets_use_vicreg_optimiser_settings(strategy):
    config = build_config(load_preset(f"cifar100-vicreg-{strategy}"))
    assert config.optim.lr == pytest.approx(0.3)
    assert config.optim.classifier_lr == pytest.approx(0.05)
    assert config.optim.weight_decay == pytest.approx(1e-4)
    assert config.augment.crop_scale == (0.2, 1.0)
    assert config.augment.solarize_prob == (0.1, 0.1)


@pytest.mark.parametrize("strategy", KAIZEN_STRATEGIES)
def test_simsiam_presets_use_simsiams_sgd_setting(strategy):
    config = build_config(load_preset(f"cifar100-simsiam-{strategy}"))
    assert config.optim.name == "sgd"
    assert config.optim.lr == pytest.approx(0.03)
    assert config.optim.weight_decay == pytest.approx(5e-4)
    assert config.optim.momentum == pytest.approx(0.9)
    assert config.optim.scale_lr_by_batch


@pytest.mark.parametrize("strategy", KAIZEN_STRATEGIES)
def test_barlow_presets_use_cassles_lars_setting_and_kaizens_loss_weights(strategy):
    config = build_config(load_preset(f"cifar100-barlow-{strategy}"))
    assert config.optim.name == "lars"
    assert config.optim.lr == pytest.approx(0.3)
    assert config.optim.weight_decay == pytest.approx(1e-4)
    assert config.ssl.method == "barlow"
    # Kaizen's released code: lambda 5e-3, scale 0.025; its distiller 5e-3 and 0.1.
    assert config.ssl.loss_scale == pytest.approx(0.025)
    assert config.ssl.off_diagonal_weight == pytest.approx(5e-3)
    assert config.ssl.distill_off_diagonal_weight == pytest.approx(5e-3)
    assert config.ssl.distill_loss_scale == pytest.approx(0.1)


RELEASED_KAIZEN = {
    "data.normalize_mean": (0.4914, 0.4822, 0.4465),
    "data.normalize_std": (0.247, 0.243, 0.261),
    "model.stem_padding": 2,
    "model.batchnorm_views": "per-view",
    "replay.selection": "first",
    "replay.sampling": "passes",
    "optim.lars_classifier": True,
    "optim.lr_update": "epoch",
    "optim.lr_bounds": "absolute",
    "optim.warmup_start_lr": 0.003,
    "augment.crop_interpolation": "bicubic",
    "train.precision": "16-mixed",
}
"""What Kaizen's released code runs, in every Kaizen-family paper preset (docs/parity.md)."""
RELEASED_KAIZEN_SSL = {
    "mocov2plus": {"distill_input": "normalized", "momentum_buffers": "own"},
    "byol": {"momentum_buffers": "own"},
    "vicreg": {"variance_branches": "sum"},
}


def _setting(config, dotted: str):
    value = config
    for key in dotted.split("."):
        value = getattr(value, key)
    return value


@pytest.mark.parametrize("name", KAIZEN_PAPER_PRESETS)
def test_kaizen_paper_presets_run_what_the_released_code_ran(name):
    config = build_config(load_preset(name))
    for dotted, expected in RELEASED_KAIZEN.items():
        assert _setting(config, dotted) == expected, dotted
    for key, expected in RELEASED_KAIZEN_SSL.get(config.ssl.method, {}).items():
        assert getattr(config.ssl, key) == expected, key
    if config.strategy.name != "finetune":  # the strategies with a teacher
        assert config.strategy.teacher_batchnorm == "batch"


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in KAIZEN_PAPER_PRESETS
        if name.split("-")[1] in ("simclr", "mocov2plus", "byol")
    ],
)
def test_other_paper_presets_use_the_shared_optimiser_settings(name):
    config = build_config(load_preset(name))
    assert config.optim.lr == pytest.approx(1.0)
    assert config.optim.classifier_lr == pytest.approx(0.1)
    assert config.optim.weight_decay == pytest.approx(1e-5)
    assert config.augment.crop_scale == (0.08, 1.0)
    assert config.augment.solarize_prob == (0.0, 0.2)


def test_preset_trees_are_independent_copies():
    tree = load_preset("cifar100-simclr-kaizen")
    tree["optim"]["lr"] = 123.0
    assert build_config(load_preset("cifar100-simclr-kaizen")).optim.lr == pytest.approx(1.0)


def test_preset_accepts_overrides():
    config = build_config(load_preset("demo"), ["train.epochs=1", "strategy.name=cassle"])
    assert config.train.epochs == 1
    assert config.strategy.name == "cassle"
    assert config.model.backbone == "convnet"


@pytest.mark.parametrize(
    "name", ["nope", "cifar100-swav-kaizen", "cifar100-simclr-ewc", "cifar10-simclr-ewc", ""]
)
def test_unknown_preset_raises_config_error(name):
    with pytest.raises(ConfigError, match="unknown preset") as caught:
        load_preset(name)
    assert f"'{name}'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_same_run_ignores_runtime_settings_update_budgets_and_keys_added_since():
    from kaizen.config import RunConfig, same_run, to_plain

    config = RunConfig()
    saved = to_plain(config)
    saved["train"]["accelerator"] = "cuda"  # another machine
    del saved["strategy"]["classifier_distill_rows"]  # written before the key existed
    assert same_run(saved, config)
    saved["train"]["epochs"] = 3  # the budget of an update's task
    saved["optim"]["lr"] = 0.5
    assert same_run(saved, config, in_update=True)
    # before the first update, another budget is another run (a hand-edited config.yaml)
    assert not same_run(saved, config)
    saved["optim"]["weight_decay"] = 0.5
    assert not same_run(saved, config, in_update=True)
    assert not same_run({"train": {"no_such_key": 1}}, config)


# ---------------------------------------------------------------------------- SSL settings

# What every preset trained with before each SSL method had its own settings record, worked out
# from the values of that time: the method's paper values, and in the fmnist family the family's
# shared ssl values on top of those the method uses.
OLD_PAPER_SSL = {
    "simclr": {"proj_hidden_dim": 4096, "proj_output_dim": 256, "temperature": 0.1},
    "mocov2plus": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 256,
        "temperature": 0.2,
        "queue_size": 65536,
        "tau_base": 0.99,
        "tau_final": 0.999,
    },
    "byol": {
        "proj_hidden_dim": 4096,
        "proj_output_dim": 256,
        "pred_hidden_dim": 4096,
        "tau_base": 0.99,
        "tau_final": 1.0,
    },
    "vicreg": {
        "proj_hidden_dim": 2048,
        "proj_output_dim": 2048,
        "sim_weight": 25.0,
        "var_weight": 25.0,
        "cov_weight": 1.0,
    },
}
OLD_FMNIST_SSL = {
    "proj_hidden_dim": 256,
    "proj_output_dim": 128,
    "pred_hidden_dim": 256,
    "queue_size": 4096,
    "temperature": 0.2,
}
OLD_PRESETS = ["demo", *(p for p in PAPER_PRESETS + FMNIST_PRESETS if p.split("-")[1] in PAPER_SSL)]


@pytest.mark.parametrize("name", OLD_PRESETS)
def test_existing_presets_keep_their_effective_ssl_settings(name):
    family, ssl = ("fmnist", "simclr") if name == "demo" else name.split("-")[:2]
    expected = dict(OLD_PAPER_SSL[ssl])
    if family == "fmnist":
        expected.update({key: v for key, v in OLD_FMNIST_SSL.items() if key in expected})
    dumped = build_config(load_preset(name)).ssl.model_dump()
    # Settings added since (the released code's variants) are checked where they are set.
    assert {key: dumped[key] for key in ("method", *expected)} == {"method": ssl, **expected}


def test_other_methods_key_is_one_line_naming_it_and_its_method_from_every_source(tmp_path):
    expected = (
        "config key 'ssl.queue_size' does not apply to ssl.method=simclr (it is a setting of "
        "mocov2plus); remove it or choose that method"
    )
    path = tmp_path / "run.yaml"
    path.write_text("ssl:\n  method: simclr\n  queue_size: 5\n")
    sources = [
        (load_yaml(path), []),
        ({"ssl": {"method": "simclr", "queue_size": 5}}, []),
        ({}, ["ssl.method=simclr", "ssl.queue_size=5"]),
        ({}, ["ssl.queue_size=5", "ssl.method=simclr"]),
        ({"ssl": {"method": "simclr"}}, ["ssl.queue_size=5"]),
    ]
    for tree, overrides in sources:
        assert _error_of(tree, overrides) == expected


def test_key_of_several_other_methods_names_them_all():
    message = _error_of({}, ["ssl.method=simclr", "ssl.tau_base=0.9"])
    assert "'ssl.tau_base' does not apply to ssl.method=simclr" in message
    assert "(it is a setting of mocov2plus, byol)" in message
    assert "choose one of those methods" in message


def test_ssl_section_without_a_method_is_the_default_mocov2plus():
    config = build_config({"ssl": {"queue_size": 512}})
    assert (config.ssl.method, config.ssl.queue_size) == ("mocov2plus", 512)
    message = _error_of({"ssl": {"pred_hidden_dim": 64}}, [])
    assert "'ssl.pred_hidden_dim' does not apply to ssl.method=mocov2plus" in message
    assert "(it is a setting of byol, simsiam)" in message


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("ssl.temprature", "ssl.temperature"), ("ssl.off_diagonal_weigth", "ssl.off_diagonal_weight")],
)
def test_unknown_ssl_key_suggests_a_key_of_any_method(key, suggestion):
    for tree, overrides in (({}, [f"{key}=1"]), ({"ssl": {key.split(".")[1]: 1}}, [])):
        message = _error_of(tree, overrides)
        assert f"unknown config key '{key}'" in message
        assert f"did you mean '{suggestion}'" in message


def test_out_of_range_ssl_value_names_the_key():
    message = _error_of({}, ["ssl.method=barlow", "ssl.loss_scale=0"])
    assert "'ssl.loss_scale' = 0" in message


def test_each_method_takes_its_own_keys():
    config = build_config(
        {}, ["ssl.method=barlow", "ssl.off_diagonal_weight=0.01", "ssl.proj_output_dim=64"]
    )
    assert config.ssl.method == "barlow"
    assert (config.ssl.off_diagonal_weight, config.ssl.proj_output_dim) == (0.01, 64)
    assert config.ssl.proj_hidden_dim == 2048  # the record's default
    config = build_config({}, ["ssl.method=simsiam", "ssl.pred_hidden_dim=64"])
    assert (config.ssl.pred_hidden_dim, config.ssl.proj_output_dim) == (64, 2048)


def test_switching_the_method_by_override_leaves_the_old_methods_keys_behind():
    tree = {"ssl": {"method": "mocov2plus", "queue_size": 128, "proj_output_dim": 64}}
    config = build_config(tree, ["ssl.method=simclr"])
    assert config.ssl.model_dump() == {
        "method": "simclr",
        "proj_hidden_dim": 4096,
        "proj_output_dim": 64,  # a key both methods have is kept
        "temperature": 0.1,
    }
    assert tree["ssl"]["queue_size"] == 128  # the input tree is not changed
    # a key the override itself sets is still checked, and so is an unknown key of the tree
    assert "does not apply" in _error_of(tree, ["ssl.method=simclr", "ssl.queue_size=8"])
    typo = {"ssl": {"method": "mocov2plus", "queue_sise": 128}}
    assert "unknown config key 'ssl.queue_sise'" in _error_of(typo, ["ssl.method=simclr"])


@pytest.mark.parametrize("ssl", SSL_METHODS)
def test_to_plain_dumps_only_the_chosen_methods_settings_and_round_trips(ssl):
    from kaizen.config import SSL_SETTINGS, to_plain

    config = build_config({}, [f"ssl.method={ssl}"])
    plain = to_plain(config)
    assert set(plain["ssl"]) == set(SSL_SETTINGS[ssl].model_fields)
    assert build_config(plain) == config


def test_a_key_of_another_strategy_is_refused_naming_its_owner():
    message = _error_of(load_preset("demo"), ["strategy.buffer_size=7"])
    assert "'strategy.buffer_size' does not apply to strategy.name=kaizen" in message
    assert "(it is a setting of lump)" in message
    message = _error_of({"strategy": {"name": "finetune", "sce_beta": 0.5}}, [])
    assert "'strategy.sce_beta' does not apply to strategy.name=finetune" in message
    assert "seqft, sl, slca, slcapp" in message


def test_a_strategy_record_holds_only_its_methods_keys():
    kaizen = build_config(load_preset("demo")).strategy
    lump = build_config(load_preset("demo"), ["strategy.name=lump"]).strategy
    assert kaizen.classifier_distill_weight == 2.0
    assert "classifier_distill_weight" not in type(lump).model_fields
    assert lump.buffer_size == 256
    # a switch keeps the keys both records have (the fmnist family's predictor width)
    assert lump.distill_predictor_hidden_dim == kaizen.distill_predictor_hidden_dim == 256


def test_the_sections_of_the_previous_layout_are_refused_with_their_new_place():
    message = _error_of(load_preset("demo"), ["lump.buffer_size=7"])
    assert "write 'strategy.buffer_size'" in message and "strategy.name=lump" in message
    message = _error_of({"slca": {"loss": "sce"}}, [])
    assert "config section 'slca'" in message and "under 'strategy:'" in message


def test_an_unknown_strategy_lists_the_registered_ones():
    message = _error_of({}, ["strategy.name=ewc"])
    assert "'strategy.name' = 'ewc'" in message
    for name in ("'kaizen'", "'lump'", "'slcapp'", "'kaizen-replay-kd'"):
        assert name in message


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_states_the_classes_its_classifier_is_evaluated_over(name):
    # SLCA's released code evaluates the heads of the tasks seen so far; Kaizen's all classes
    stated = load_preset(name).get("eval", {}).get("classes")
    assert stated == ("seen" if name.startswith("slca-") else "all")
