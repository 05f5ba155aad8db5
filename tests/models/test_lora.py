"""LoRA adapters: SLCA++'s initialisation, the adapted function, merging and its errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kaizen.errors import ConfigError
from kaizen.models.lora import LoRALinear, add_lora, merge_lora


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 6), nn.GELU(), nn.Linear(6, 5), nn.LayerNorm(5))


def _inputs() -> torch.Tensor:
    return torch.randn(7, 8, generator=torch.Generator().manual_seed(1))


def test_initialisation_is_the_top_right_singular_vectors_and_zeros():
    linear = nn.Linear(8, 6)
    layer = LoRALinear(linear, rank=3, scale=0.8)
    _, singular, right = torch.linalg.svd(linear.weight.detach().double())
    assert layer.lora_a.shape == (3, 8) and layer.lora_b.shape == (6, 3)
    torch.testing.assert_close(layer.lora_a.double(), right[:3])
    # each row of A is a unit vector that W stretches by its singular value
    stretched = torch.linalg.vector_norm(layer.lora_a.double() @ linear.weight.double().T, dim=1)
    torch.testing.assert_close(stretched, singular[:3])
    assert torch.count_nonzero(layer.lora_b) == 0


def test_adapter_keeps_the_pretrained_keys_and_starts_as_the_pretrained_layer():
    model = _mlp()
    expected = model(_inputs())
    keys = set(model.state_dict())
    assert add_lora(model, lambda name: name in {"0", "2"}) == ["0", "2"]
    assert set(model.state_dict()) == keys | {"0.lora_a", "0.lora_b", "2.lora_a", "2.lora_b"}
    torch.testing.assert_close(model(_inputs()), expected)


def test_adapted_output_is_the_low_rank_update():
    model = _mlp()
    add_lora(model, lambda name: name == "0", rank=2, scale=0.5)
    layer = model[0]
    assert isinstance(layer, LoRALinear)
    with torch.no_grad():
        layer.lora_b.normal_(generator=torch.Generator().manual_seed(2))
    x = _inputs()
    by_hand = x @ (layer.weight + 0.5 * layer.lora_b @ layer.lora_a).T + layer.bias
    torch.testing.assert_close(layer(x), by_hand)


def test_merged_model_equals_the_adapted_one_and_has_no_adapter():
    model = _mlp()
    add_lora(model, lambda name: True)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_b.normal_(generator=torch.Generator().manual_seed(3))
    adapted = model(_inputs())
    assert merge_lora(model) == 2
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert not any("lora" in key for key in model.state_dict())
    torch.testing.assert_close(model(_inputs()), adapted, rtol=1e-5, atol=1e-6)


def test_only_the_adapter_trains_where_the_weight_was_frozen():
    model = _mlp()
    model.requires_grad_(False)
    add_lora(model, lambda name: name == "2")
    model(_inputs()).sum().backward()
    layer = model[2]
    assert layer.weight.grad is None and layer.bias.grad is None
    assert layer.lora_a.requires_grad and layer.lora_b.grad is not None


def test_lora_on_a_model_without_linear_layers_is_one_line():
    convolutional = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ConfigError, match="LoRA needs linear layers") as error:
        add_lora(convolutional, lambda name: True)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"rank must be in \[1, 6\]"):
        LoRALinear(nn.Linear(8, 6), rank=7, scale=0.8)
