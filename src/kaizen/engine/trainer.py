"""The continual training loop on Lightning Fabric: task after task, evaluate, checkpoint, resume.

The whole run state (learner, the method's parts with their buffers and teachers, optimiser, RNG,
position, results so far) goes into one checkpoint every ``train.checkpoint_every_epochs`` epochs,
at the end of each task and on SIGINT/SIGTERM (:mod:`kaizen.engine.run_state`, read back by
``CheckpointStore.load_run``). A resumed run continues from the newest valid checkpoint with every
part's state as saved, and on CPU ends with the same results as an uninterrupted run. The trainer
knows methods only through :class:`~kaizen.methods.seam.Method` and what is done with finished
tasks only through the :class:`~kaizen.engine.hooks.RunHook` factories it is given."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from kaizen.config import RunConfig
from kaizen.data.scenario import Task
from kaizen.data.stream import Scenario, Stream, load_stream
from kaizen.data.updates import Update
from kaizen.engine.costs import BackwardFlops, LiveTensorPeak, training_state
from kaizen.engine.environment import peak_memory, run_environment
from kaizen.engine.fabric_setup import start_fabric
from kaizen.engine.hooks import RunHook, RunHookFactory
from kaizen.engine.interrupt import StopRequests
from kaizen.engine.learners import LearnerFactory
from kaizen.engine.progress import (
    LogWindow,
    TaskClock,
    TrainingProgress,
    log_task_accuracies,
)
from kaizen.engine.run_state import RunState
from kaizen.engine.step import prepare_learner
from kaizen.engine.task_training import prepare_task
from kaizen.eval.evaluator import Evaluator
from kaizen.eval.results import Result, write_results
from kaizen.learner.learner import Learner
from kaizen.methods.build import build_method
from kaizen.methods.seam import Method, RunContext
from kaizen.ssl.registry import views_of
from kaizen.storage.checkpoints import CheckpointStore, Position
from kaizen.storage.rundir import (
    CHECKPOINT_FOLDER,
    CONFIG_FILE,
    holds_run,
    occupied_error,
    start_run_dir,
    with_cache_in_run_dir,
)
from kaizen.testpoints import reached


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
        self.fabric = start_fabric(config, out_dir)
        if not self.fabric.is_global_zero:
            self.console = Console(quiet=True)
        config = with_cache_in_run_dir(config, out_dir)
        self.stream: Stream = load_stream(
            config, self.fabric, views_of(config.ssl), updates, scenario
        )
        for part in self.method.parts:
            part.validate(self.stream)
        self.learners = LearnerFactory(self.config, self.stream, self.method)
        self.learners.check()
        self.store = CheckpointStore(
            out_dir / CHECKPOINT_FOLDER, config.train.keep_checkpoints, self._warn
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
        config = self.config
        for message in self.stream.warnings:
            self._warn(message)
        self.fabric.seed_everything(config.seed, verbose=False)
        self.state = RunState.start(config, self.stream, run_environment(self.fabric, config))
        self.evaluator = Evaluator(self.stream, config.eval, self.fabric)
        config_file, scenario_tasks = self.out_dir / CONFIG_FILE, self.stream.scenario_tasks
        say = self.console.print
        saved = self.store.load_run(config, config_file, scenario_tasks, say) if resume else None
        position = Position(**saved["position"]) if saved is not None else Position(0, 0, 0)
        # the learner as the checkpoint holds it: sized for the tasks known at its position
        built_for = position.task - 1 if position.at_task_start else position.task
        self._set_learner(self.learners.new(built_for))
        if saved is None:
            self.state.result.random_init = self.evaluator.random_init_row(self.learner)
        else:
            self._restore(saved, position)
        with self.stops, TrainingProgress(self.console, config.train.progress) as progress:
            for task in self.stream.tasks[position.task :]:
                resumed = saved if saved is not None and not position.at_task_start else None
                self._run_task(task, position, resumed, progress)
                position, saved = Position(task.index + 1, 0, 0), None
        for logger in self.fabric.loggers:
            logger.finalize("success")
        return self.state.result

    def _set_learner(self, learner: Learner) -> None:
        self.learner = prepare_learner(learner, self.config.train)
        self.module = self.fabric.setup_module(self.learner)
        self.context = RunContext(self.stream, self.fabric, self.learner)

    def _restore(self, saved: dict[str, Any], position: Position) -> None:
        self.learner.load_state_dict(saved["learner"])
        tasks = self.stream.tasks
        self.context.task = tasks[position.task] if position.task < len(tasks) else None
        self.method.load_state_dict(saved["method"], self.context)
        self.state.restore(saved, self.config.seed + 1 + position.task, self._warn)

    def _save(
        self,
        position: Position,
        optimizer: torch.optim.Optimizer | None,
        order: Tensor | None,
        task_clock: dict[str, float],
    ) -> None:
        if self.fabric.is_global_zero:
            state = self.state.checkpoint(
                self.config, position, self.learner, self.method, optimizer, order, task_clock
            )
            self.store.save(state, position)
        self.fabric.barrier()

    def _start_task(self, task: Task, resumed: bool, clock: TaskClock) -> None:
        """A fresh or grown learner where the task asks for one, then every part's start; the
        parts' time is charged to the task's training (``clock``'s hooks)."""
        method, stream = self.method, self.stream
        if not resumed and task.index > 0 and method.fresh_learner:
            self._set_learner(self.learners.new(task.index))
        elif not resumed and stream.learner_grows_at(task.index):
            self._set_learner(self.learners.grown(self.learner, task.index))
            self.context.task = task
            with clock.timing_hooks():
                for part in method.parts:
                    part.classes_grown(self.context)
        self.context.task = task
        if not resumed:
            with clock.timing_hooks():
                for part in method.parts:
                    part.start_task(self.context)

    def _run_task(
        self,
        task: Task,
        start: Position,
        resumed: dict[str, Any] | None,
        progress: TrainingProgress,
    ) -> None:
        """Train ``task`` from ``start``, evaluate, record, checkpoint."""
        config, fabric, stream, method = self.config, self.fabric, self.stream, self.method
        clock = TaskClock(resumed["task_clock"] if resumed else None)
        self._start_task(task, resumed is not None, clock)
        run = prepare_task(
            config,
            fabric,
            stream,
            method,
            self.learner,
            self.module,
            task,
            self.context.task_classes,
            resumed["optimizer"] if resumed is not None else None,
            self.state.sampler,
        )
        indices, batch_size, steps_per_epoch = run.indices, run.batch_size, run.steps_per_epoch
        epochs, total_steps, watch = run.epochs, run.total_steps, run.watch
        world, rank, sampler = fabric.world_size, fabric.global_rank, self.state.sampler
        index_device = indices.device

        def save(position: Position, order: Tensor | None) -> None:
            watch.check(task.index, steps_per_epoch)
            self._save(position, run.optimizer, order, clock.read())

        flops, step_memory = BackwardFlops(), LiveTensorPeak(fabric.device)
        step = start.epoch * steps_per_epoch + start.batch
        steps_before = sum(record.steps for record in self.state.result.tasks)
        progress.start_task(task.index, len(stream.tasks), total_steps, step)
        self.learner.train()
        clock.start_training()
        window, measured = LogWindow(progress, fabric, steps_before), False
        for epoch in range(start.epoch, epochs):
            saved_order = resumed["epoch_order"] if resumed and epoch == start.epoch else None
            order = (
                saved_order.to(index_device)
                if saved_order is not None
                else indices[torch.randperm(len(indices), generator=sampler, device=index_device)]
            )
            for batch_index in range(start.batch if epoch == start.epoch else 0, steps_per_epoch):
                rows = order[batch_index * batch_size : (batch_index + 1) * batch_size]
                batch = method.step_rows(rows.tensor_split(world)[rank], sampler, world, rank)
                run.schedule.set(step)
                tau = self.learner.ssl.momentum_rate(step, total_steps)
                images = stream.train_images.gather(batch)
                batch_labels = run.labels[batch.to(run.labels.device)]
                if measured:
                    values = run.step(images, batch_labels, tau, run.replayed)
                else:  # the first step run in the task: its FLOPs and memory
                    run.step.backward_region = flops.measure
                    with step_memory.measure(training_state(self.learner, run.optimizer)):
                        values = run.step(images, batch_labels, tau, run.replayed)
                    run.step.backward_region, measured = nullcontext, True
                method.end_step(rows)
                watch.observe(values, step)
                step += 1
                window.add(len(batch) * world)
                if step % config.train.log_every == 0 or step == total_steps:
                    window.report(step, epoch, epochs, values, run.optimizer)
                reached(f"step {task.index}.{epoch}.{batch_index}")
                if self.stops.requested:
                    save(Position(task.index, epoch, batch_index + 1), order)
                    raise self.stops.interrupted(self.out_dir, task.index, epoch, step)
            done = epoch + 1
            if done < epochs and done % config.train.checkpoint_every_epochs == 0:
                save(Position(task.index, done, 0), None)
        watch.check(task.index, steps_per_epoch)
        images_per_step = batch_size + run.extra_rows
        self._finish_task(task, total_steps, images_per_step, clock, (flops, step_memory))

    def _finish_task(
        self,
        task: Task,
        steps: int,
        images_per_step: int,
        clock: TaskClock,
        step_costs: tuple[BackwardFlops, LiveTensorPeak],
    ) -> None:
        """End the task in every part, evaluate, record, write results and checkpoint.

        The training loop's time is read before the parts' end and the evaluation; the parts'
        end is timed as a hook (charged to training), the wall time is read after both.
        """
        train_seconds = clock.read()["train"]
        with clock.timing_hooks():
            for part in self.method.parts:
                part.end_task(self.context)
        evaluation = self.evaluator.evaluate(self.learner, task, self.state.previous_correct)
        self.state.previous_correct = evaluation.correct
        reports = {part.name: part.report() for part in self.method.parts if part.report()}
        record = self.state.record_task(task, evaluation, steps, steps * images_per_step, reports)
        seconds = {**clock.read(), "train": train_seconds}
        memory = peak_memory(self.fabric.device)
        self.state.record_costs(record, seconds, memory, *step_costs)
        log_task_accuracies(self.fabric, task.index, record.accuracies)
        if self.fabric.is_global_zero:
            write_results(self.state.result, self.out_dir)
            for hook in self.hooks:
                hook.task_finished(task, self.learner, evaluation.correct)
        reached(f"task-end {task.index}")
        self._save(Position(task.index + 1, 0, 0), None, None, TaskClock().before)
