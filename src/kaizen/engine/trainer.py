"""The continual training loop on Lightning Fabric: task after task, evaluate, checkpoint, resume.

The whole run state (learner, the method's parts with their buffers and teachers, optimiser,
RNG, position, results so far) goes into one checkpoint every ``train.checkpoint_every_epochs``
epochs, at the end of each task and on SIGINT/SIGTERM. A resumed run continues from the newest
valid checkpoint with every part's state as saved, and on CPU ends with the same results as an
uninterrupted run. The trainer knows methods only through :class:`~kaizen.methods.seam.Method`.
"""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy
from rich.console import Console
from torch import Tensor

from kaizen.config import RunConfig, same_run, to_plain
from kaizen.data.replay import replayed_rows
from kaizen.data.scenario import Task, training_labels
from kaizen.data.stream import Scenario, Stream, load_stream
from kaizen.data.updates import Update
from kaizen.engine.costs import BackwardFlops, LiveTensorPeak
from kaizen.engine.experiment_log import build_loggers
from kaizen.engine.hardware import check_hardware
from kaizen.engine.hooks import RunHook, RunHookFactory
from kaizen.engine.interrupt import RunInterrupted, StopRequests
from kaizen.engine.progress import TrainingProgress
from kaizen.engine.rng import capture_rng, restore_rng
from kaizen.engine.step import TrainStep, prepare_learner
from kaizen.errors import ConfigError, KaizenError
from kaizen.eval.accuracy import CLASSIFIER_PROTOCOL, scenario_protocol
from kaizen.eval.evaluator import Evaluator, probe_protocols
from kaizen.eval.results import Result, TaskCost, TaskRecord, write_results
from kaizen.learner.learner import Learner, build_learner
from kaizen.learner.optim import TaskSchedule, build_optimizer
from kaizen.methods.build import build_method
from kaizen.methods.seam import Method, RunContext
from kaizen.models.heads import with_leading_rows
from kaizen.ssl.registry import views_of
from kaizen.storage.checkpoints import CheckpointStore, Position
from kaizen.storage.rundir import (
    CHECKPOINT_FOLDER,
    holds_run,
    occupied_error,
    start_run_dir,
    with_cache_in_run_dir,
)
from kaizen.testpoints import reached
from kaizen.version import __version__

FABRIC_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}
CHECKPOINT_FORMAT = 2


class NonFiniteLossError(KaizenError):
    """A loss term became NaN or infinite."""


class LossWatch:
    """Tracks, on the device and without host syncs, the first step where each term was not finite.

    ``first_bad[k]`` is -1 while term k has stayed finite, else the task step where it first was
    NaN or infinite. ``fix`` is the remedy the error suggests.
    """

    def __init__(self, names: list[str], device: torch.device, fix: str) -> None:
        self.names = names
        self.fix = fix
        self.first_bad = torch.full((len(names),), -1, dtype=torch.int64, device=device)

    def observe(self, values: dict[str, Tensor], step: int) -> None:
        finite = torch.stack([torch.isfinite(values[name]).all() for name in self.names])
        self.first_bad = torch.where(
            (~finite) & (self.first_bad < 0), torch.full_like(self.first_bad, step), self.first_bad
        )

    def check(self, task: int, steps_per_epoch: int) -> None:
        """Raise :class:`NonFiniteLossError` naming the first bad term and where it happened."""
        bad = self.first_bad.tolist()
        failures = [(step, name) for step, name in zip(bad, self.names, strict=True) if step >= 0]
        if failures:
            step, name = min(failures)
            raise NonFiniteLossError(
                f"loss term '{name}' became NaN or infinite at task {task}, epoch "
                f"{step // steps_per_epoch}, step {step}; the run stopped and its last good "
                f"checkpoint is kept ({self.fix})"
            )


def check_parallel_config(config: RunConfig, fabric: Fabric) -> None:
    """Batches must split evenly over processes; synchronised BatchNorm needs an accelerator."""
    world = fabric.world_size
    train, replay = config.train, config.replay
    for key, size in (
        ("train.batch_size", train.batch_size),
        ("replay.batch_size", replay.batch_size),
    ):
        if size % world:
            raise ConfigError(
                f"{key}={size} does not split over {world} processes; use a multiple of {world}"
            )
    if train.sync_batchnorm and fabric.device.type == "cpu":
        raise ConfigError(
            "train.sync_batchnorm=true needs GPUs (PyTorch synchronises BatchNorm on accelerators "
            "only); set it to false on CPU"
        )


def _training_state(learner: Learner, optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The tensors a training step keeps between steps: parameters and optimiser state."""
    state = [
        value
        for per_param in optimizer.state.values()
        for value in per_param.values()
        if isinstance(value, Tensor)
    ]
    return [*learner.parameters(), *learner.buffers(), *state]


class ContinualTrainer:
    """Runs one continual sequence as ``config`` says, in the run directory ``out_dir``.

    Construction reads and checks the data (so bad input fails before anything is written);
    :meth:`run` trains, from the start or from the newest valid checkpoint. ``updates`` are the
    run directory's updates, each one more task after the scenario's; ``scenario`` is the
    dataset and tasks of ``config`` when the caller has read them already; ``hooks`` build what
    is told of a new run and of each finished task (model versions, say).
    """

    def __init__(
        self,
        config: RunConfig,
        out_dir: Path,
        console: Console | None = None,
        updates: Sequence[Update] = (),
        scenario: Scenario | None = None,
        hooks: Sequence[RunHookFactory] = (),
    ) -> None:
        self.config = config
        self.out_dir = out_dir
        self.console = console or Console(stderr=True)
        self.method: Method = build_method(config)
        train = config.train
        check_hardware(train)
        if train.num_threads is not None:
            torch.set_num_threads(train.num_threads)
        self.fabric = Fabric(
            accelerator=train.accelerator,
            devices=train.devices,
            num_nodes=train.num_nodes,
            strategy=(
                DDPStrategy(find_unused_parameters=True) if train.strategy == "ddp" else "auto"
            ),
            precision=FABRIC_PRECISION[train.precision],  # type: ignore[arg-type]
            loggers=build_loggers(train.logger, out_dir),
        )
        self.fabric.launch()
        check_parallel_config(config, self.fabric)
        if not self.fabric.is_global_zero:
            self.console = Console(quiet=True)
        config = with_cache_in_run_dir(config, out_dir)
        self.stream: Stream = load_stream(
            config, self.fabric, views_of(config.ssl), updates, scenario
        )
        for part in self.method.parts:
            part.validate(self.stream)
        self._check_learner()
        self.store = CheckpointStore(
            out_dir / CHECKPOINT_FOLDER, train.keep_checkpoints, self._warn
        )
        self.stops = StopRequests()
        self.hooks: list[RunHook] = [make(out_dir, config, self.stream) for make in hooks]

    def start_run_dir(self, force: bool) -> None:
        """Make the run directory ready for a new run (see :func:`start_run_dir`).

        Every process checks the directory before the first one writes, so all of them refuse
        together, or rank 0 writes while the others wait.
        """
        occupied = holds_run(self.out_dir)
        self.fabric.barrier()
        if occupied and not force:
            raise occupied_error(self.out_dir)
        if self.fabric.is_global_zero:
            start_run_dir(self.out_dir, self.config, force)
            for hook in self.hooks:
                hook.run_started()
        self.fabric.barrier()

    def _warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)

    def run(self, resume: bool = False) -> Result:
        """Train every remaining task; returns the full result.

        With ``resume``, continue from the newest valid checkpoint (or from the start when
        there is none).
        """
        for message in self.stream.warnings:
            self._warn(message)
        self.fabric.seed_everything(self.config.seed, verbose=False)
        kind, probes = self.config.scenario.kind, probe_protocols(self.config.eval)
        self.result = Result(
            self.config,
            scenario_protocol(kind, CLASSIFIER_PROTOCOL),
            {name: scenario_protocol(kind, text) for name, text in probes.items()},
            environment=self._environment(),
            planned_tasks=len(self.stream.tasks),
        )
        self.evaluator = Evaluator(self.stream, self.config.eval, self.fabric)
        index_device = self.stream.train_images.index_device
        self.sampler = torch.Generator(index_device).manual_seed(self.config.seed)
        self.previous_correct: Tensor | None = None
        saved = self._load_checkpoint() if resume else None
        position = Position(**saved["position"]) if saved is not None else Position(0, 0, 0)
        # the learner as the checkpoint holds it: sized for the tasks known at its position
        built_for = position.task - 1 if position.at_task_start else position.task
        self._set_learner(self._new_learner(built_for))
        if saved is None:
            self.result.random_init = self.evaluator.classifier_row(self.learner)
            position = Position(0, 0, 0)
        else:
            position = self._restore(saved)
        with self.stops, TrainingProgress(self.console, self.config.train.progress) as progress:
            for task in self.stream.tasks[position.task :]:
                resumed = saved if saved is not None and not position.at_task_start else None
                self._run_task(task, position, resumed, progress)
                position, saved = Position(task.index + 1, 0, 0), None
        for logger in self.fabric.loggers:
            logger.finalize("success")
        return self.result

    # -- state -------------------------------------------------------------------------------

    def _new_learner(self, task_index: int, pretrained: bool = True) -> Learner:
        """A fresh learner whose classifier covers the classes known while ``task_index``
        trains; without ``pretrained``, the backbone keeps its random initialisation."""
        config = self.config
        if not pretrained:
            config = config.model_copy(
                update={"model": config.model.model_copy(update={"weights": None})}
            )
        data, stream = self.stream.data, self.stream
        side = data.train.images.shape[-1]
        task_classes = [task.classes for task in stream.tasks_known_at(task_index)]
        learner = build_learner(
            config, data.channels, stream.classes_at(task_index), side, task_classes
        )
        for part in self.method.parts:
            part.prepare_learner(learner)
        return learner

    def _grow_learner(self, task: Task) -> None:
        """Give the classifier the rows (or heads) of the classes ``task`` is the first to
        bring: the known ones keep their weights, the new ones start as a fresh learner's."""
        grown = self._new_learner(task.index, pretrained=False)
        grown.load_state_dict(with_leading_rows(grown.state_dict(), self.learner.state_dict()))
        self._set_learner(grown)
        self.context.task = task
        for part in self.method.parts:
            part.classes_grown(self.context)

    def _check_learner(self) -> None:
        """Build the learner on the meta device and let every part prepare it, so that a part
        refusing it (ConfigError) does so before anything is written."""
        data = self.stream.data
        model = self.config.model.model_copy(update={"weights": None})
        config = self.config.model_copy(update={"model": model})
        task_classes = [task.classes for task in self.stream.tasks]
        side = data.train.images.shape[-1]
        with torch.device("meta"):
            learner = build_learner(config, data.channels, data.num_classes, side, task_classes)
            for part in self.method.parts:
                part.prepare_learner(learner)

    def _set_learner(self, learner: Learner) -> None:
        self.learner = prepare_learner(learner, self.config.train)
        self.module = self.fabric.setup_module(self.learner)
        self.context = RunContext(self.stream, self.fabric, self.learner)

    def _checkpoint(
        self,
        position: Position,
        optimizer: torch.optim.Optimizer | None,
        order: Tensor | None,
        task_clock: dict[str, float],
    ) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": to_plain(self.config),
            "position": asdict(position),
            "learner": self.learner.state_dict(),
            "method": self.method.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "epoch_order": order.cpu() if order is not None else None,
            "records": [asdict(record) for record in self.result.tasks],
            "random_init": self.result.random_init,
            "previous_correct": self.previous_correct,
            "costs": [asdict(cost) for cost in self.result.costs],
            "task_clock": task_clock,
            "rng": capture_rng(),
            "sampler_rng": self.sampler.get_state(),
        }

    def _save(
        self,
        position: Position,
        optimizer: torch.optim.Optimizer | None,
        order: Tensor | None,
        task_clock: dict[str, float],
    ) -> None:
        if self.fabric.is_global_zero:
            self.store.save(self._checkpoint(position, optimizer, order, task_clock), position)
        self.fabric.barrier()

    def _load_checkpoint(self) -> dict[str, Any] | None:
        found = self.store.load_latest()
        if found is None:
            self._warn(f"no valid checkpoint in {self.store.folder}; starting from the first task")
            return None
        state, path = found
        if state.get("format") != CHECKPOINT_FORMAT:
            raise KaizenError(
                f"{path} has checkpoint format {state.get('format')}, this version reads "
                f"{CHECKPOINT_FORMAT}; resume it with the kaizen-cl version that wrote it"
            )
        if not same_run(state["config"], self.config):
            raise KaizenError(
                f"{path} was written with another config than {self.out_dir / 'config.yaml'}; "
                "restore that file or start a new run"
            )
        self.console.print(f"resuming from {path.name}")
        return state

    def _restore(self, state: dict[str, Any]) -> Position:
        position = Position(**state["position"])
        self.learner.load_state_dict(state["learner"])
        tasks = self.stream.tasks
        self.context.task = tasks[position.task] if position.task < len(tasks) else None
        self.method.load_state_dict(state["method"], self.context)
        self.result.tasks = [
            TaskRecord(**{**record, "classes": tuple(record["classes"])})
            for record in state["records"]
        ]
        self.result.costs = [TaskCost(**cost) for cost in state["costs"]]
        self.result.random_init = state["random_init"]
        self.previous_correct = state["previous_correct"]
        restore_rng(state["rng"])
        saved_sampler = state["sampler_rng"]
        if saved_sampler.numel() == self.sampler.get_state().numel():
            self.sampler.set_state(saved_sampler)
        else:  # written on another kind of device, whose generator state does not transfer
            self._warn(
                "the checkpoint was written on another kind of device: batches from here on "
                "are drawn in another order than an uninterrupted run's"
            )
            self.sampler.manual_seed(self.config.seed + 1 + position.task)
        return position

    # -- one task ------------------------------------------------------------------------------

    def _run_task(
        self,
        task: Task,
        start: Position,
        resumed: dict[str, Any] | None,
        progress: TrainingProgress,
    ) -> None:
        """Train ``task`` from ``start``, evaluate, record, checkpoint."""
        config, fabric, stream = self.config, self.fabric, self.stream
        before = dict(resumed["task_clock"]) if resumed else {"wall": 0.0, "train": 0.0}
        wall_start = time.perf_counter()
        method = self.method
        if resumed is None and task.index > 0 and method.fresh_learner:
            self._set_learner(self._new_learner(task.index))
        elif resumed is None and stream.learner_grows_at(task.index):
            self._grow_learner(task)
        self.context.task = task
        if resumed is None:
            for part in method.parts:
                part.start_task(self.context)
        seen = method.training_tasks(task, stream.tasks)
        index_device = stream.train_images.index_device
        indices = torch.cat([t.train_indices for t in seen]).to(index_device)
        labels = fabric.to_device(training_labels(stream.data.train.labels, seen))
        batch_size = min(config.train.batch_size, len(indices))
        steps_per_epoch = len(indices) // batch_size
        epochs = config.train.epochs
        total_steps = steps_per_epoch * epochs

        optimizer = build_optimizer(self.learner, config.optim, batch_size, self._adjust_groups)
        if resumed is not None and resumed["optimizer"] is not None:
            optimizer.load_state_dict(resumed["optimizer"])
        # Fabric's wrapper takes on the class of the optimiser it wraps.
        optimizer = cast(torch.optim.Optimizer, fabric.setup_optimizers(optimizer))
        schedule = TaskSchedule(optimizer, config.optim, steps_per_epoch, epochs)
        teacher = method.teacher
        terms = method.terms(self.learner, teacher, self.context.task_classes)
        train_step = TrainStep(
            fabric,
            self.learner,
            self.module,
            teacher,
            terms,
            optimizer,
            stream.augment,
            config.train.channels_last,
            config.optim.clip_grad_norm,
            self._view_transform(),
        )
        fix = "lower optim.lr" + (
            "" if config.train.precision == "32" else " or use train.precision=32"
        )
        watch = LossWatch([term.name for term in terms], fabric.device, fix)
        extra_rows = sum(part.rows_per_step() for part in method.parts)
        world = fabric.world_size
        replayed = replayed_rows(batch_size // world, extra_rows // world, fabric.device)

        def this_rank(global_batch: Tensor) -> Tensor:
            """This process's contiguous share of a batch drawn identically on every process."""
            return global_batch.tensor_split(fabric.world_size)[fabric.global_rank]

        def clock() -> dict[str, float]:
            now = time.perf_counter()
            return {
                "wall": before["wall"] + now - wall_start,
                "train": before["train"] + now - train_start,
            }

        def save(position: Position, order: Tensor | None) -> None:
            watch.check(task.index, steps_per_epoch)
            self._save(position, optimizer, order, clock())

        flops, step_memory = BackwardFlops(), LiveTensorPeak(fabric.device)
        step = start.epoch * steps_per_epoch + start.batch
        steps_before = sum(record.steps for record in self.result.tasks)
        measured = False
        progress.start_task(task.index, len(stream.tasks), total_steps, step)
        self.learner.train()
        train_start = time.perf_counter()
        window_start, window_images = train_start, 0
        for epoch in range(start.epoch, epochs):
            saved_order = resumed["epoch_order"] if resumed and epoch == start.epoch else None
            order = (
                saved_order.to(index_device)
                if saved_order is not None
                else indices[
                    torch.randperm(len(indices), generator=self.sampler, device=indices.device)
                ]
            )
            first = start.batch if epoch == start.epoch else 0
            for batch_index in range(first, steps_per_epoch):
                batch = this_rank(order[batch_index * batch_size : (batch_index + 1) * batch_size])
                for part in method.parts:
                    rows = part.step_rows(self.sampler)
                    if rows is not None:
                        batch = torch.cat([batch, this_rank(rows)])
                schedule.set(step)
                tau = self.learner.ssl.momentum_rate(step, total_steps)
                images = stream.train_images.gather(batch)
                batch_labels = labels[batch.to(labels.device)]
                if measured:
                    values = train_step(images, batch_labels, tau, replayed)
                else:  # the first step run in the task: its FLOPs and memory
                    train_step.backward_region = flops.measure
                    with step_memory.measure(_training_state(self.learner, optimizer)):
                        values = train_step(images, batch_labels, tau, replayed)
                    train_step.backward_region, measured = nullcontext, True
                watch.observe(values, step)
                step += 1
                window_images += len(batch) * fabric.world_size
                if step % config.train.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    losses = {name: float(value) for name, value in values.items()}
                    rate = window_images / max(now - window_start, 1e-9)
                    progress.update(step, epoch, epochs, losses, rate)
                    window_start, window_images = now, 0
                    logged = {f"loss/{name}": value for name, value in losses.items()}
                    for group in optimizer.param_groups:
                        logged[f"lr/{group.get('name', 'group')}"] = group["lr"]
                    logged["images_per_second"] = rate
                    fabric.log_dict(logged, step=steps_before + step)
                reached(f"step {task.index}.{epoch}.{batch_index}")
                if self.stops.requested:
                    save(Position(task.index, epoch, batch_index + 1), order)
                    raise self._interrupted(task.index, epoch, step)
            done = epoch + 1
            if done < epochs and done % config.train.checkpoint_every_epochs == 0:
                save(Position(task.index, done, 0), None)
        watch.check(task.index, steps_per_epoch)
        self._finish_task(
            task, total_steps, batch_size + extra_rows, clock, (flops.total, step_memory)
        )

    def _finish_task(
        self,
        task: Task,
        steps: int,
        images_per_step: int,
        clock: Callable[[], dict[str, float]],
        step_costs: tuple[int, LiveTensorPeak],
    ) -> None:
        """End the task in every part, evaluate, record, write results and checkpoint.

        The task's training time is read before the parts' end and the evaluation; its wall
        time after both.
        """
        train_seconds = clock()["train"]
        for part in self.method.parts:
            part.end_task(self.context)
        evaluation = self.evaluator.evaluate(self.learner, task, self.previous_correct)
        self.previous_correct = evaluation.correct
        images = steps * images_per_step
        self.result.tasks.append(
            TaskRecord(
                task.index,
                task.classes,
                evaluation.accuracies,
                images,
                steps,
                len(task.test_indices),
                evaluation.negative_flip_rate,
                evaluation.probes,
                {part.name: part.report() for part in self.method.parts if part.report()},
            )
        )
        memory, kind = self._peak_memory()
        step_flops, step_memory = step_costs
        self.result.costs.append(
            TaskCost(
                task.index,
                clock()["wall"],
                train_seconds,
                images,
                memory,
                kind,
                step_flops,
                step_memory.bytes,
                step_memory.method,
            )
        )
        record = self.result.tasks[-1]
        seen = record.accuracies[: task.index + 1]
        self.fabric.log_dict(
            {
                **{f"accuracy/task_{j}": value for j, value in enumerate(record.accuracies)},
                "accuracy/seen_tasks": sum(seen) / len(seen),
            },
            step=task.index,
        )
        if self.fabric.is_global_zero:
            write_results(self.result, self.out_dir)
            for hook in self.hooks:
                hook.task_finished(task, self.learner, evaluation.correct)
        reached(f"task-end {task.index}")
        self._save(Position(task.index + 1, 0, 0), None, None, {"wall": 0.0, "train": 0.0})

    def _adjust_groups(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for part in self.method.parts:
            groups = part.parameter_groups(groups)
        return groups

    def _view_transform(self) -> Callable[[Tensor], Tensor]:
        """The parts' transforms of the views, in order, drawing from the batch sampler."""

        def transform(views: Tensor) -> Tensor:
            for part in self.method.parts:
                views = part.transform(views, self.sampler)
            return views

        return transform

    def _interrupted(self, task: int, epoch: int, step: int) -> RunInterrupted:
        number = self.stops.signal_number or 2
        return RunInterrupted(
            f"stopped by signal {number} at task {task}, epoch {epoch}, step {step}; a checkpoint "
            f"was saved: continue with `kaizen resume {self.out_dir}`",
            number,
        )

    def _peak_memory(self) -> tuple[int, str]:
        device = self.fabric.device
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            return int(peak), "cuda max_memory_allocated"
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process max RSS"

    def _environment(self) -> dict[str, str]:
        device = self.fabric.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
        return {
            "kaizen": __version__,
            "torch": torch.__version__,
            "device": f"{device.type}: {name}",
            "precision": self.config.train.precision,
            "threads": str(torch.get_num_threads()),
            "processes": str(self.fabric.world_size),
        }
