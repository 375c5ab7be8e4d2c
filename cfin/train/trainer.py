"""The training loop of the paper (section IV-B): Adam, cosine-annealed learning rate, L1 loss.

A run lives in one folder::

    last.pt            training checkpoint (state.py), rewritten atomically every
                       ``checkpoint_every`` iterations and when the run stops
    final.pt           the trained weights (cfin.save format for CFIN models)
    best.pt            the weights with the best validation PSNR so far
    train_log.jsonl    the training curve (log.py)
    .lock              held by the process training in the folder (lock.py)

Calling :func:`train` again on the same folder resumes from ``last.pt``. Data order comes
from ``(seed, epoch)`` and the position in the epoch (sampler.py), patches from the
dataset's ``(seed, index)`` determinism, and the model's random draws from the restored
RNG state, so on CPU an interrupted and resumed run ends with the same bits as an
uninterrupted one. Under ``torchrun`` (distributed.py) each of N processes takes
``batch_size / N`` patches of every global batch and DDP averages the gradients; only
rank 0 writes files and shows the progress bar. The patches of a step are the same for any
N, but the model's random draws (CFIN's Gumbel masks) come from one stream per process, so
N processes do not repeat one process's run bit for bit.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from cfin.atomic import atomic_torch_save
from cfin.config import CFINConfig
from cfin.errors import CFINError
from cfin.train import distributed as D
from cfin.train.lock import run_lock
from cfin.train.log import LOG_NAME, TrainLog
from cfin.train.recipes import Recipe
from cfin.train.sampler import ResumableSampler, derive_seed
from cfin.train.state import (FORMAT, VERSION, check_compatible, load_state, rng_state, save_state, seed_all,
                              set_rng_state)
from cfin.train.validate import as_pair, validate

CHECKPOINT_NAME = "last.pt"
FINAL_NAME = "final.pt"
BEST_NAME = "best.pt"

LOSS_FUNCTIONS = {"l1": F.l1_loss, "mse": F.mse_loss}

TRAIN_STREAM, LOADER_STREAM = 3, 4  # first keys of derive_seed (sampler: 1, validation: 2)


class TrainingInterrupted(Exception):
    """:func:`train` stopped when its ``should_stop`` asked, ``last.pt`` written at ``iteration``
    (a later call resumes from there)."""

    def __init__(self, iteration: int, checkpoint: Path):
        super().__init__(f"training stopped on request at iteration {iteration:,}; checkpoint {checkpoint}")
        self.iteration, self.checkpoint = iteration, checkpoint


@dataclass(frozen=True)
class TrainResult:
    """What a call to :func:`train` did.

    Args:
        iterations: iterations done so far (``recipe.iterations`` once complete).
        completed: whether the whole recipe has run.
        resumed_from: the checkpoint's iteration when this call resumed, else None.
        final_loss: mean training loss of the last logged window, kept in the checkpoint (a
            resumed run reports it too; None if none was logged).
        best_psnr: best validation PSNR so far (None without validation).
        best_iteration: iteration of ``best_psnr``.
        checkpoint: the training checkpoint ``last.pt``.
        weights: ``final.pt`` when complete, else None.
        best_weights: ``best.pt`` when validated, else None.
        log: the JSON-lines training log.
        elapsed: training seconds, summed over resumed segments.
    """

    iterations: int
    completed: bool
    resumed_from: int | None
    final_loss: float | None
    best_psnr: float | None
    best_iteration: int | None
    checkpoint: Path
    weights: Path | None
    best_weights: Path | None
    log: Path
    elapsed: float


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """Adam over every trainable parameter (the official code includes the mean shifts)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from ``lr`` to ``eta_min`` over the run in steps of ``lr_step_every``
    iterations (``recipe.scheduler == "cosine"``; :func:`step_scheduler` steps it), or a
    constant ``lr`` (``"constant"``)."""
    if recipe.scheduler == "cosine":
        steps = -(-recipe.iterations // recipe.lr_step_every)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=recipe.eta_min)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def step_scheduler(scheduler: torch.optim.lr_scheduler.LRScheduler, recipe: Recipe, iteration: int) -> None:
    """Step ``scheduler`` after ``iteration`` (counted from 1) iterations when they end a step of
    ``recipe.lr_step_every`` (the official code's epoch of 1000 batches; 1: every iteration)."""
    if iteration % recipe.lr_step_every == 0:
        scheduler.step()


def save_weights(model: nn.Module, path: Path, **metadata) -> Path:
    """The model's weights: cfin.save's format for a CFIN (readable by cfin.load), else a state dict."""
    if isinstance(getattr(model, "config", None), CFINConfig):
        from cfin.checkpoint import save_checkpoint

        return save_checkpoint(model, path, **metadata)
    return atomic_torch_save(path, {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                                    "metadata": metadata})


def network_of(model: nn.Module) -> dict | None:
    """The network a CFIN computes (:meth:`CFINConfig.network`); None for another model."""
    config = getattr(model, "config", None)
    return config.network() if isinstance(config, CFINConfig) else None


def _has_unused_parameters(model: nn.Module, recipe: Recipe, device: torch.device) -> bool:
    """Whether a training step leaves some trainable parameter without a gradient (DDP must know)."""
    probe = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        x = torch.rand(1, 3, recipe.patch_size, recipe.patch_size, device=device) * 255
        probe(x).mean().backward()
    return any(p.requires_grad and p.grad is None for p in probe.parameters())


def train(model: nn.Module, recipe: Recipe, train_set: Dataset, out_dir: str | Path,
          device: str | torch.device | None = None, val_set=None, resume: bool = True,
          progress: bool = True, max_iterations: int | None = None, tf32: bool = False,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train ``model`` by ``recipe`` on ``train_set``, checkpointing to ``out_dir``.

    The initial weights are the caller's (``cfin train`` seeds torch with ``recipe.seed``
    before building the model); a fresh run then seeds every random stream from
    ``(recipe.seed, rank)``. ``model`` is trained in place and moved to ``device``.

    Args:
        model: a network mapping B x 3 x h x w in [0, 255] to B x 3 x sh x sw.
        recipe: the optimizer, schedule and cadence (recipes.py).
        train_set: items ``dict(lr=3 x P x P, hr=3 x sP x sP)`` float tensors in [0, 255],
            each a deterministic function of its index (and of the epoch, if the dataset
            has ``set_epoch(epoch)``, which is called before each epoch).
        out_dir: the run folder (created); another process training in it is an error (lock.py).
        device: "cpu", "cuda", "cuda:N" or a torch.device; None: CUDA when present.
            Under torchrun each process uses ``cuda:LOCAL_RANK`` on CUDA.
        val_set: held-out images (items ``dict(lr=, hr=)`` or ``(lr, hr)``, 3 x H x W in
            [0, 255]); the first ``recipe.val_images`` are used every ``val_every``
            iterations. None: no validation.
        resume: continue from ``out_dir/last.pt`` when it exists; False starts over.
        progress: show a tqdm bar (loss, lr, ETA) on rank 0.
        max_iterations: stop once this many iterations are done, writing ``last.pt`` there; a
            later call resumes towards ``recipe.iterations`` (an interrupted run resumes from its
            last periodic ``last.pt``).
        tf32: on CUDA, let matmuls and cuDNN convolutions run in TF32 (faster on Ampere and
            later; PyTorch's default for convolutions); False (default) trains in float32,
            as the paper's GPU did.
        should_stop: asked after every iteration (under torchrun, every ``log_every`` iterations,
            the processes agreeing): True stops the run there, writing ``last.pt`` at that
            iteration, and raises :class:`TrainingInterrupted` (a Slurm job warned of its end
            checkpoints so, then requeues itself: :mod:`cfin.runner.team`).
    """
    from cfin.device import resolve_device, tf32_mode

    if max_iterations is not None and (isinstance(max_iterations, bool) or not isinstance(max_iterations, int)
                                       or max_iterations < 0):
        raise CFINError(f"max_iterations must be a non-negative int or None, got {max_iterations!r}")
    patch = getattr(train_set, "patch_size", recipe.patch_size)
    if patch != recipe.patch_size:
        raise CFINError(f"the training set makes {patch}x{patch} LR patches but recipe {recipe.name!r} asks "
                        f"for {recipe.patch_size}x{recipe.patch_size}; build the dataset with "
                        f"patch_size={recipe.patch_size}")
    info, device = D.setup(resolve_device(device))
    try:  # the main process holds the folder (under torchrun a failure there stops the others)
        with run_lock(out_dir) if info.is_main else contextlib.nullcontext(), tf32_mode(device, tf32):
            return _Run(model, recipe, train_set, Path(out_dir), device, val_set, info).run(resume, progress,
                                                                                            max_iterations, should_stop)
    finally:
        D.teardown(info)


class _Run:
    """The state of one training run on one process."""

    def __init__(self, model, recipe, train_set, out_dir, device, val_set, info):
        self.recipe, self.train_set, self.out_dir = recipe, train_set, out_dir
        self.device, self.info = device, info
        self.val_set = val_set if (val_set is not None and len(val_set) and recipe.val_images) else None
        self._val_pairs: list | None = None  # the first val_images pairs, loaded once
        self.model = model.to(device)
        self.optimizer = build_optimizer(self.model, recipe)
        self.scheduler = build_scheduler(self.optimizer, recipe)
        self.sampler = ResumableSampler(len(train_set), recipe.batch_size, recipe.seed, info.rank, info.world_size)
        self.loss_fn = LOSS_FUNCTIONS[recipe.loss]
        self.log = TrainLog(out_dir / LOG_NAME)
        self.ckpt_path = out_dir / CHECKPOINT_NAME
        self.iteration, self.elapsed, self.resumed_from = 0, 0.0, None
        self.best_psnr: float | None = None
        self.best_iteration: int | None = None
        self.last_loss: float | None = None

    # -- state ---------------------------------------------------------------------------
    def _restore(self, resume: bool) -> None:
        if not (resume and self.ckpt_path.is_file()):
            if not resume and self.info.is_main:  # starting over: the last run's weights and checkpoint are
                # not this one's (a last.pt left behind would be resumed if this run stops before its first)
                for name in (CHECKPOINT_NAME, FINAL_NAME, BEST_NAME):
                    (self.out_dir / name).unlink(missing_ok=True)
            seed_all(derive_seed(TRAIN_STREAM, self.recipe.seed, self.info.rank))
            return
        state = load_state(self.ckpt_path)
        check_compatible(state, self.recipe, len(self.train_set), network_of(self.model), self.ckpt_path,
                          self._images())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration = self.resumed_from = state["iteration"]
        self.elapsed = state["elapsed"]
        self.best_psnr, self.best_iteration = state["best_psnr"], state["best_iteration"]
        self.last_loss = state.get("last_loss")  # absent from checkpoints written before it was kept
        rngs = state["rng"]
        if self.info.rank < len(rngs):
            set_rng_state(rngs[self.info.rank])
        else:  # resumed on more processes than saved it: fresh streams for the new ranks
            seed_all(derive_seed(TRAIN_STREAM, self.recipe.seed, self.info.rank, self.iteration))

    def _save(self) -> None:
        rngs = D.all_gather_object(self.info, rng_state())  # a collective: every rank takes part
        if not self.info.is_main:
            return
        epoch, batch = divmod(self.iteration, self.sampler.batches_per_epoch)
        save_state(self.ckpt_path, {
            "format": FORMAT, "version": VERSION, "iteration": self.iteration,
            "data": {"epoch": epoch, "batch_in_epoch": batch, "num_samples": self.sampler.num_samples,
                     "images": self._images()},
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rngs, "recipe": self.recipe.to_dict(),
            "network": network_of(self.model), "world_size": self.info.world_size, "best_psnr": self.best_psnr,
            "best_iteration": self.best_iteration, "elapsed": self.elapsed, "last_loss": self.last_loss,
        })

    def _images(self) -> dict | None:
        """Which images the training set cuts patches from (TrainPatchDataset.images), if it says."""
        images = getattr(self.train_set, "images", None)
        return images() if callable(images) else None

    def _metadata(self) -> dict:
        return {"recipe": self.recipe.to_dict(), "iteration": self.iteration, "best_psnr": self.best_psnr,
                "best_iteration": self.best_iteration}

    # -- the loop ------------------------------------------------------------------------
    def _loader(self, epoch: int, start_batch: int) -> DataLoader:
        self.sampler.set_epoch(epoch, start_batch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        # A generator of its own: creating the iterator draws a worker base seed from it,
        # which would otherwise come from (and shift) the global stream the model uses.
        gen = torch.Generator().manual_seed(derive_seed(LOADER_STREAM, self.recipe.seed, epoch))
        return DataLoader(self.train_set, batch_size=self.sampler.per_rank, sampler=self.sampler,
                          num_workers=self.recipe.num_workers, pin_memory=self.device.type == "cuda",
                          generator=gen)

    def run(self, resume: bool, progress: bool, max_iterations: int | None,
            should_stop: Callable[[], bool] | None = None) -> TrainResult:
        r, info = self.recipe, self.info
        self._restore(resume)
        stop = r.iterations if max_iterations is None else min(max_iterations, r.iterations)
        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.log.start(self.iteration)
        net = self.model
        if info.distributed:
            unused = _has_unused_parameters(self.model, r, self.device)
            net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda"
                                          else None, find_unused_parameters=unused)
        net.train()
        window = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss sum, count
        t0, elapsed0, interrupted = time.perf_counter(), self.elapsed, None
        bar = tqdm(total=r.iterations, initial=self.iteration, desc=f"train[{r.name}]", unit="it",
                   dynamic_ncols=True, disable=not (progress and info.is_main))
        try:
            while self.iteration < stop:
                epoch, start_batch = divmod(self.iteration, self.sampler.batches_per_epoch)
                for batch in self._loader(epoch, start_batch):
                    lr_img, hr_img = (t.to(self.device, non_blocking=True) for t in as_pair(batch))
                    loss = self.loss_fn(net(lr_img), hr_img)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    self.iteration += 1
                    step_scheduler(self.scheduler, self.recipe, self.iteration)
                    window[0] += loss.detach()
                    window[1] += 1
                    bar.update(1)
                    self.elapsed = elapsed0 + time.perf_counter() - t0
                    if self._stop_requested(should_stop):
                        stop = interrupted = self.iteration
                    self._after_step(stop, window, bar)
                    if self.iteration >= stop:
                        break
        finally:
            bar.close()
        if interrupted is not None and interrupted < r.iterations:
            D.barrier(info)  # last.pt is written before any process leaves
            raise TrainingInterrupted(interrupted, self.ckpt_path)
        if self.iteration >= r.iterations and info.is_main and not (self.out_dir / FINAL_NAME).is_file():
            save_weights(self.model, self.out_dir / FINAL_NAME, **self._metadata())
        D.barrier(info)
        return self._result()

    def _stop_requested(self, should_stop: Callable[[], bool] | None) -> bool:
        """``should_stop()``; under torchrun asked every ``log_every`` iterations, and True on
        every process where it is on any (they stop at the same iteration, which the checkpoint's
        collectives need)."""
        if should_stop is None:
            return False
        if not self.info.distributed:
            return bool(should_stop())
        if self.iteration % self.recipe.log_every:
            return False
        flag = torch.tensor([1.0 if should_stop() else 0.0], device=self.device)
        return bool(D.all_reduce_sum(self.info, flag).item() > 0)

    def _after_step(self, stop: int, window: torch.Tensor, bar) -> None:
        r, it = self.recipe, self.iteration
        val_psnr = None
        if self.val_set is not None and (it % r.val_every == 0 or it == r.iterations):
            if self._val_pairs is None:
                self._val_pairs = [as_pair(self.val_set[i]) for i in range(min(r.val_images, len(self.val_set)))]
            val_psnr = validate(self.model, self._val_pairs, self.device, r.seed, info=self.info)
            if self.best_psnr is None or val_psnr > self.best_psnr:
                self.best_psnr, self.best_iteration = val_psnr, it
                if self.info.is_main:
                    save_weights(self.model, self.out_dir / BEST_NAME, **self._metadata())
        if it % r.log_every == 0 or val_psnr is not None or it == stop:
            self._record(window, val_psnr, bar)
        if it % r.checkpoint_every == 0 or it == stop:
            self._save()

    def _record(self, window: torch.Tensor, val_psnr: float | None, bar) -> None:
        total = D.all_reduce_sum(self.info, window.clone())
        loss = float(total[0] / total[1]) if total[1] else None
        window.zero_()
        if loss is not None and not torch.isfinite(torch.tensor(loss)):
            raise CFINError(f"training diverged: mean loss {loss} at iteration {self.iteration}; "
                            f"the last checkpoint is {self.ckpt_path}")
        self.last_loss = loss if loss is not None else self.last_loss
        lr = self.optimizer.param_groups[0]["lr"]
        rec = {"iteration": self.iteration, "epoch": (self.iteration - 1) // self.sampler.batches_per_epoch,
               "loss": loss, "lr": lr, "time": round(self.elapsed, 3)}
        if val_psnr is not None:
            rec.update(val_psnr=val_psnr, best_psnr=self.best_psnr)
        if self.info.is_main:
            self.log.append(rec)
            bar.set_postfix({k: f"{v:.4g}" for k, v in (("loss", loss), ("lr", lr), ("psnr", val_psnr))
                             if v is not None})

    def _result(self) -> TrainResult:
        best = self.out_dir / BEST_NAME
        final = self.out_dir / FINAL_NAME
        return TrainResult(
            iterations=self.iteration, completed=self.iteration >= self.recipe.iterations,
            resumed_from=self.resumed_from, final_loss=self.last_loss, best_psnr=self.best_psnr,
            best_iteration=self.best_iteration, checkpoint=self.ckpt_path,
            weights=final if self.iteration >= self.recipe.iterations else None,
            best_weights=best if self.best_psnr is not None else None,
            log=self.out_dir / LOG_NAME, elapsed=self.elapsed)
