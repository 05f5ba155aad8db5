"""SLCA++'s hybrid slow learner (Zhang et al., arXiv 2408.08295): a frozen pre-trained backbone
with low-rank adapters, its LayerNorms, biases and class token trained slowly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol

from kaizen.config import OptimConfig
from kaizen.learner.learner import Learner
from kaizen.methods.seam import Part, RunContext
from kaizen.models.lora import add_lora

LoraTarget = Literal["qkv", "fc1", "fc2"]
"""A linear layer of every Transformer block that may get an adapter: the attention's query,
key and value projection, or the first or second MLP layer."""

TRAINED_SLOWLY = ("norm", "bias", "cls_token")
"""Backbone parameters that stay trainable beside the adapters (by name)."""

ADAPTER_GROUP = "adapters"
"""The ``name`` of the adapters' parameter group."""


class LoraSettings(Protocol):
    """What the hybrid slow learner reads from its method's settings record."""

    @property
    def lora_targets(self) -> Sequence[LoraTarget]:
        """The layers of every block that get an adapter."""

    @property
    def lora_rank(self) -> int:
        """Rank of the adapters."""

    @property
    def lora_scale(self) -> float:
        """Factor of the adapters' product."""

    @property
    def lora_first_task_lr(self) -> float:
        """The adapters' learning rate at the first task."""

    @property
    def lora_lr(self) -> float:
        """The adapters' learning rate after it."""


class HybridSlowLearner(Part):
    """LoRA of rank ``strategy.lora_rank`` and scale ``strategy.lora_scale`` on the layers of
    every block that ``strategy.lora_targets`` names (:mod:`kaizen.models.lora`), one adapter
    trained through the whole sequence; every other pre-trained weight frozen except LayerNorms,
    biases and the [CLS] token, which train at the backbone's slow ``optim.lr``. The adapters
    train at ``strategy.lora_first_task_lr`` at the first task and ``strategy.lora_lr`` after it,
    with the backbone's weight decay.

    A layer that is not named gets no adapter at all. SLCA++'s released code builds adapters on
    the MLP layers too, but its optimiser takes only the qkv adapters (the parameter names with
    ``lora_A`` or ``lora_B``), so the MLP adapters' B stays zero and they add nothing to the
    function: leaving them out computes the same model with fewer parameters.

    The adapters are part of the learner, so they live in the run checkpoint with it; which
    rate applies follows from the task, so the part keeps no state of its own.
    """

    name: ClassVar[str] = "hybrid"

    def __init__(self, config: LoraSettings, optim: OptimConfig) -> None:
        self.config = config
        self.weight_decay = optim.weight_decay
        self.adapter_ids: set[int] = set()
        self.task_index = 0
        self.trainable = 0

    def prepare_learner(self, learner: Learner) -> None:
        backbone = learner.backbone
        targets = frozenset(self.config.lora_targets)
        add_lora(
            backbone,
            lambda name: name.rpartition(".")[2] in targets,
            self.config.lora_rank,
            self.config.lora_scale,
        )
        self.adapter_ids = set()
        for name, parameter in backbone.named_parameters():
            is_adapter = ".lora_" in name
            if is_adapter:
                self.adapter_ids.add(id(parameter))
            parameter.requires_grad_(is_adapter or any(key in name for key in TRAINED_SLOWLY))
        self.trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)

    def start_task(self, run: RunContext) -> None:
        self.task_index = run.current.index

    def load_state_dict(self, state: dict[str, Any], run: RunContext) -> None:
        if run.task is not None:
            self.task_index = run.task.index

    def parameter_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        adapters = [p for g in groups for p in g["params"] if id(p) in self.adapter_ids]
        kept = [
            {**g, "params": [p for p in g["params"] if id(p) not in self.adapter_ids]}
            for g in groups
        ]
        lr = self.config.lora_first_task_lr if self.task_index == 0 else self.config.lora_lr
        adapter_group = {
            "name": ADAPTER_GROUP,
            "params": adapters,
            "initial_lr": lr,
            "weight_decay": self.weight_decay,
            "lars": False,
        }
        return [*kept, adapter_group]

    def report(self) -> dict[str, Any]:
        return {"trainable_backbone_parameters": self.trainable}
