"""Training recipes: the paper's schedule (section IV-B), as the official code ran it and as
the paper's text states it, and two shrunken budgets of it.

A :class:`Recipe` is everything about *how* a network is trained (optimizer, schedule,
patches, checkpoint and validation cadence); *what* is trained is a
:class:`cfin.config.CFINConfig`. The named recipes share the paper's optimizer and loss and
differ in length, patch/batch size and the cosine's end and step::

    cfin train --preset x4 --recipe smoke                         # minutes on 2 CPU cores
    cfin train --preset x4 --recipe short --data-root DATA         # hours on one GPU
    torchrun --nproc_per_node 4 -m cfin train --preset x4 --recipe paper --data-root DATA
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cfin.errors import CFINError, choice_error

LOSSES = ("l1", "mse")
SCHEDULERS = ("cosine", "constant")


@dataclass(frozen=True)
class Recipe:
    """How to train: Adam + L1 + cosine annealing (paper IV-B), with the run's cadence.

    Args:
        name: the recipe's name, recorded in checkpoints and logs.
        iterations: optimizer steps in the whole run.
        batch_size: global batch (summed over all processes under ``torchrun``; each of
            the N processes takes ``batch_size / N`` patches, which must divide evenly).
        patch_size: side of an LR training patch (the HR patch is ``scale`` times larger).
        lr: initial learning rate.
        eta_min: the cosine schedule's final learning rate.
        betas: Adam's (beta1, beta2).
        eps: Adam's epsilon.
        loss: pixel loss between SR and HR: "l1" (the paper) or "mse".
        scheduler: "cosine" (annealed from ``lr`` to ``eta_min`` over ``iterations``) or
            "constant".
        lr_step_every: iterations per step of the cosine: 1 (a smooth curve, the paper's
            reading) or 1000 (the official code, one step per 'epoch' of 1000 batches); it
            takes ``ceil(iterations / lr_step_every)`` steps.
        checkpoint_every: iterations between ``last.pt`` checkpoints (one is also written
            at the end of the run and when it stops at ``max_iterations``).
        val_every: iterations between validations.
        val_images: held-out images used per validation (0: no validation).
        log_every: iterations between training-log records (mean loss over the window).
        num_workers: DataLoader worker processes (0: load in the training process).
        seed: seeds data order, the model's random draws (Gumbel masks) and, through the
            CLI, the initial weights.
    """

    name: str
    iterations: int
    batch_size: int = 16
    patch_size: int = 48
    lr: float = 5e-4
    eta_min: float = 6.25e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    loss: str = "l1"
    scheduler: str = "cosine"
    lr_step_every: int = 1
    checkpoint_every: int = 1000
    val_every: int = 1000
    val_images: int = 10
    log_every: int = 100
    num_workers: int = 4
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.loss not in LOSSES:
            raise choice_error("loss", self.loss, LOSSES)
        if self.scheduler not in SCHEDULERS:
            raise choice_error("scheduler", self.scheduler, SCHEDULERS)
        for n in ("iterations", "batch_size", "patch_size", "lr_step_every", "checkpoint_every", "val_every",
                  "log_every"):
            _check_int(n, getattr(self, n), minimum=1)
        for n in ("val_images", "num_workers", "seed"):
            _check_int(n, getattr(self, n), minimum=0)
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise CFINError(f"recipe field lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.eta_min, (int, float)) and 0 <= self.eta_min <= self.lr):
            raise CFINError(f"recipe field eta_min must be a number in [0, lr = {self.lr}], got {self.eta_min!r}")
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise CFINError(f"recipe field betas must be two numbers in [0, 1), got {self.betas!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise CFINError(f"recipe field eps must be a positive number, got {self.eps!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Recipe":
        """A copy with ``changes``; unknown field names are rejected with the valid ones listed."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)


def recipe_fields(saved: dict) -> dict:
    """A recipe dict written by an earlier version, with the fields added since at their defaults
    (what that version ran: ``lr_step_every`` 1)."""
    defaults = {f.name: f.default for f in dataclasses.fields(Recipe) if f.default is not dataclasses.MISSING}
    return {**defaults, **saved}


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CFINError(f"recipe field {name} must be an int >= {minimum}, got {value!r}")


def _reject_unknown(changes: dict) -> None:
    known = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise CFINError(f"unknown recipe field(s) {unknown}; valid fields: {', '.join(sorted(known))}")


# The paper's protocol as the official code ran it (REFERENCE.md, "Training": where paper and
# code disagree, the code produced the paper's numbers): 1000 "epochs" of 1000 iterations at
# batch 16, the cosine stepped once per epoch down to 1e-7, a validation after each epoch on
# DIV2K 896-900 (``cfin train``'s validation set), the best weights kept.
_PAPER = Recipe(name="paper", iterations=1_000_000, eta_min=1e-7, lr_step_every=1000,
                checkpoint_every=1000, val_every=1000, val_images=5, log_every=100)

RECIPES: dict[str, Recipe] = {
    # A pipeline check, not a result: sized so that a whole paper table (5-10 models) trains
    # in minutes on 2 CPU cores (its step and validation times: docs/performance.md).
    "smoke": Recipe(name="smoke", iterations=40, batch_size=4, patch_size=24,
                    checkpoint_every=20, val_every=40, val_images=2, log_every=5, num_workers=0),
    # Hours on one GPU: 5% of the paper's iterations, the rest as "paper" (its cosine over 50 epochs).
    "short": _PAPER.replace(name="short", iterations=50_000),
    "paper": _PAPER,
    # The same run as the paper's text states it (sec. IV-B: "finally reduced to 6.25e-6 by
    # cosine annealing"; no step given, so a smooth curve): the option REFERENCE.md asks for
    # beside the code's reading. How far apart they are: the audit's training-schedule finding.
    "paper-text": _PAPER.replace(name="paper-text", eta_min=6.25e-6, lr_step_every=1),
}


def check_budget(budget: str) -> str:
    """``budget`` (run_all.py's ``--budget``, a record's ``budget``) if it names a recipe; a
    CFINError listing the budgets otherwise."""
    if budget not in RECIPES:
        raise choice_error("budget", budget, RECIPES)
    return budget


def recipe(name: str, **overrides) -> Recipe:
    """The named recipe ("smoke", "short", "paper", "paper-text") with field overrides."""
    if name not in RECIPES:
        raise choice_error("recipe", name, RECIPES)
    return RECIPES[name].replace(**overrides) if overrides else RECIPES[name]
