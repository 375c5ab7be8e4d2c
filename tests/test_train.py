"""The training engine: recipes, exact resume, atomic and checked checkpoints, DDP on CPU, the CLI."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cfin
from cfin.errors import CFINError
from cfin.train import RECIPES, recipe, train
from cfin.train.log import read_log
from cfin.train.sampler import ResumableSampler
from cfin.train.state import load_state, save_state
from cfin.train.trainer import build_optimizer, build_scheduler, step_scheduler
from numerics import OUT_ATOL, assert_within, faithful_noise, noise_bound

TESTS = Path(__file__).resolve().parent


class TinySR(nn.Module):
    """A 2-layer conv + PixelShuffle x2 stand-in; dropout makes it draw random numbers as CFIN's mask does."""

    def __init__(self, dropout: float = 0.2, fail_at: int | None = None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.fail_at:
                raise RuntimeError(f"injected failure at training step {self.calls}")
        return self.body(x / 255) * 255 + nn.functional.interpolate(x, scale_factor=2)


class ToyPatches(torch.utils.data.Dataset):
    """x2 patches, item i a deterministic function of i (as TrainPatchDataset is of (seed, i))."""

    def __init__(self, n: int = 24, p: int = 8):
        self.n, self.p = n, p

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 + i)
        hr = nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=2 * self.p, mode="bilinear")[0] * 255
        return {"lr": nn.functional.avg_pool2d(hr[None], 2)[0], "hr": hr}


def _toy_recipe(**changes):
    base = dict(iterations=10, batch_size=4, patch_size=8, checkpoint_every=4, val_every=5, val_images=2,
                log_every=2, num_workers=0)
    return recipe("smoke", **{**base, **changes})


def _train_toy(out, rec=None, fail_at=None, **kw):
    torch.manual_seed(0)
    model = TinySR(fail_at=fail_at)
    res = train(model, rec or _toy_recipe(), ToyPatches(), out, device="cpu",
                val_set=[ToyPatches(3, 12)[i] for i in range(3)], progress=False, **kw)
    return model, res


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- recipes -----------------------------------------------------------------------------------
def test_recipes_follow_the_paper_and_reject_bad_input():
    """``paper`` is the official code's run (REFERENCE.md, "Training"): the cosine down to 1e-7 in
    1000 steps of one 1000-batch epoch, validated after each epoch on DIV2K 896-900;
    ``paper-text`` the same with the schedule the paper's text states; ``short`` 5% of ``paper``."""
    paper = RECIPES["paper"]
    assert (paper.iterations, paper.batch_size, paper.patch_size) == (1_000_000, 16, 48)
    assert (paper.lr, paper.eta_min, paper.betas, paper.eps, paper.loss) == (5e-4, 1e-7, (0.9, 0.999), 1e-8, "l1")
    assert (paper.lr_step_every, paper.val_every, paper.val_images) == (1000, 1000, 5)
    assert RECIPES["paper-text"] == paper.replace(name="paper-text", eta_min=6.25e-6, lr_step_every=1)
    assert RECIPES["short"] == paper.replace(name="short", iterations=50_000)
    assert recipe("short", seed=3).seed == 3
    with pytest.raises(CFINError, match="smoke, short, paper, paper-text"):
        recipe("long")
    with pytest.raises(CFINError, match=r"unknown recipe field\(s\) \['itterations'\].*iterations"):
        recipe("smoke", itterations=5)
    for bad, msg in ((dict(batch_size=0), "batch_size"), (dict(eta_min=1.0), "eta_min"),
                     (dict(loss="l3"), "l1, mse"), (dict(scheduler="step"), "cosine, constant"),
                     (dict(betas=(0.9, 1.5)), "betas"), (dict(iterations=2.5), "iterations"),
                     (dict(lr_step_every=0), "lr_step_every")):
        with pytest.raises(CFINError, match=msg):
            recipe("smoke", **bad)


def test_cosine_schedule_runs_from_lr_to_eta_min():
    rec = recipe("smoke", iterations=10)
    opt = build_optimizer(nn.Linear(2, 2), rec)
    sched = build_scheduler(opt, rec)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(10):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(5e-4) and lrs[-1] == pytest.approx(6.25e-6)
    assert lrs[5] == pytest.approx((5e-4 + 6.25e-6) / 2)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_iterations_off_the_step_keep_the_staircase_and_the_help_says_so():
    """``--iterations N`` with the official code's epoch steps (``paper``, ``short``): the cosine takes
    ceil(N / 1000) steps, so under 1000 iterations the rate never leaves ``lr`` and a last partial
    epoch keeps the rate of the last step; ``cfin train --help`` says so rather than "spans N"."""
    from cfin.cli import build_parser

    def lrs(iterations):
        rec = recipe("paper", iterations=iterations)
        opt = build_optimizer(nn.Linear(2, 2), rec)
        sched = build_scheduler(opt, rec)
        out = []
        for it in range(1, iterations + 1):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            step_scheduler(sched, rec, it)
        return out
    assert set(lrs(500)) == {5e-4}
    short = lrs(1500)
    assert set(short[:1000]) == {5e-4} and short[1000:] == [pytest.approx((5e-4 + 1e-7) / 2)] * 500
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(next(a.help for a in train_parser._actions if "--iterations" in a.option_strings).split())
    assert "1000" in text and "constant" in text, text


class SamePatch(torch.utils.data.Dataset):
    """``n`` copies of one x2 patch: every batch is the same whatever the data order."""

    def __init__(self, n: int = 8, p: int = 8):
        self.n, self.item = n, ToyPatches(1, p)[0]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.item


@pytest.mark.parametrize("every", [1, 2, 4])
def test_training_steps_are_the_papers_adam_l1_and_cosine(tmp_path, every):
    """The trainer against a hand-written loop of the paper's recipe (IV-B): torch.optim.Adam with
    betas (0.9, 0.999), eps 1e-8 on the mean absolute error, the learning rate of iteration i
    ``eta_min + (lr - eta_min) (1 + cos(pi k / T)) / 2`` with k = floor(i / every) of T =
    ceil(iterations / every) steps: every iteration (the paper's text), or once per ``every``
    iterations (the official code's 1000-batch epoch)."""
    import math

    rec = _toy_recipe(iterations=6, batch_size=4, log_every=1, checkpoint_every=6, val_images=0,
                      lr_step_every=every)
    data = SamePatch(8)
    torch.manual_seed(0)
    model = TinySR(dropout=0.0)
    ref = TinySR(dropout=0.0)
    ref.load_state_dict(model.state_dict())
    train(model, rec, data, tmp_path, device="cpu", progress=False)

    def cosine(i):
        return 6.25e-6 + (5e-4 - 6.25e-6) * (1 + math.cos(math.pi * (i // every) / math.ceil(6 / every))) / 2
    opt = torch.optim.Adam(ref.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    lr, hr = (torch.stack([data[0][k]] * rec.batch_size) for k in ("lr", "hr"))
    losses = []
    for t in range(rec.iterations):
        opt.param_groups[0]["lr"] = cosine(t)
        loss = (ref(lr) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    log = read_log(tmp_path)
    assert list(log.iteration) == list(range(1, rec.iterations + 1))
    assert list(log.lr) == pytest.approx([cosine(t) for t in range(1, rec.iterations + 1)], rel=1e-9)
    # the trainer and the loop run the same ops; 1e-5 leaves room for another order of the loss's mean
    assert list(log.loss) == pytest.approx(losses, rel=1e-5)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=1e-7)  # eps 1e-6 moves them 2e-6
    group = load_state(tmp_path / "last.pt")["optimizer"]["param_groups"][0]
    assert (tuple(group["betas"]), group["eps"]) == ((0.9, 0.999), 1e-8)


def test_best_weights_are_those_of_the_highest_validation_psnr(tmp_path, monkeypatch):
    """best.pt, best_psnr and best_iteration follow the maximum validation PSNR, wherever it falls."""
    import cfin.train.trainer as trainer

    scripted, snapshots = iter([20.0, 25.0, 22.0, 24.0]), []

    def validate(model, *args, **kwargs):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted)
    monkeypatch.setattr(trainer, "validate", validate)
    model, res = _train_toy(tmp_path, rec=_toy_recipe(iterations=8, val_every=2))
    assert (res.best_psnr, res.best_iteration) == (25.0, 4)
    assert list(read_log(tmp_path).best_psnr.dropna()) == [20.0, 25.0, 25.0, 25.0]
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["metadata"]["iteration"] == 4
    assert all(torch.equal(best["state_dict"][k], v) for k, v in snapshots[1].items())
    assert not all(torch.equal(best["state_dict"][k], v) for k, v in model.state_dict().items())


def test_validation_psnr_is_the_y_channel_with_scale_pixels_cropped():
    """A hand-made case: the output is the HR image but for row ``scale`` (the first row kept after
    cropping ``scale`` pixels), 10 levels brighter on R, G and B, so Y is 10 x 219 / 255 higher
    there: the MSE is that squared over the 20 rows kept, and a crop of one pixel more sees nothing."""
    import math

    from cfin.train.validate import validate

    scale, hr = 2, torch.full((3, 24, 24), 100.0)
    sr = hr.clone()
    sr[:, scale] += 10

    class Fixed(nn.Module):
        def forward(self, x):
            return sr[None].expand(x.shape[0], -1, -1, -1)

    got = validate(Fixed(), [(torch.zeros(3, 12, 12), hr)], torch.device("cpu"), seed=0)
    assert got == pytest.approx(10 * math.log10(255 ** 2 / ((10 * 219 / 255) ** 2 / 20)), abs=1e-9)


# -- data order --------------------------------------------------------------------------------
def test_sampler_resumes_mid_epoch_and_shards_global_batches():
    full = ResumableSampler(30, 6, seed=7)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == sorted(set(order)) and len(order) == 30
    full.set_epoch(2, start_batch=3)
    assert list(full) == order[18:]
    full.set_epoch(3)
    assert list(full) != order  # a new permutation each epoch
    ranks = []
    for rank in range(2):
        s = ResumableSampler(30, 6, seed=7, rank=rank, world_size=2)
        s.set_epoch(2)
        ranks.append(list(s))
    merged = [i for b in range(5) for r in range(2) for i in ranks[r][3 * b:3 * b + 3]]
    assert merged == order  # the same global batches whatever the number of processes
    with pytest.raises(CFINError, match="divisible"):
        ResumableSampler(30, 6, seed=0, world_size=4)


def test_sampler_length_is_what_it_yields():
    """DataLoader sizes an epoch by len(): a resumed epoch has fewer batches, each rank its share."""
    for world, rank, start in ((1, 0, 0), (1, 0, 3), (2, 1, 0), (2, 0, 4), (3, 2, 2)):
        s = ResumableSampler(32, 6, seed=1, rank=rank, world_size=world)  # 5 global batches, 2 samples dropped
        s.set_epoch(0, start_batch=start)
        assert len(s) == len(list(s)) == (5 - start) * 6 // world


def test_torchrun_rank_is_the_global_rank(monkeypatch):
    """On a second node LOCAL_RANK restarts at 0: the process's rank (who writes, its share of
    each batch) is RANK; LOCAL_RANK only picks the GPU."""
    import torch.distributed as dist

    from cfin.train import distributed

    joined = {}
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: joined.update(kw))
    for name, value in (("WORLD_SIZE", "4"), ("RANK", "3"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    info, device = distributed.setup(torch.device("cpu"))
    assert (info.rank, info.world_size, info.local_rank, info.owns_group) == (3, 4, 1, True)
    assert not info.is_main and info.distributed and device == torch.device("cpu")
    assert joined["backend"] == "gloo" and distributed.launched_processes() == 4


@pytest.mark.parametrize("field,value", [("iterations", 7), ("batch_size", 3), ("patch_size", 17), ("lr", 1e-3),
                                         ("eta_min", 1e-9), ("betas", (0.8, 0.9)), ("eps", 1e-6), ("loss", "mse"),
                                         ("scheduler", "constant"), ("lr_step_every", 1000), ("seed", 5)])
def test_resume_checks_every_schedule_field(field, value):
    """Each field that changes what the steps compute (schedule, optimizer, loss, data order)
    makes the checkpoint another run's; the cadence fields do not."""
    import dataclasses

    from cfin.train.state import check_compatible

    rec = _toy_recipe(iterations=4)
    tiny = cfin.preset("tiny", scale=2).network()
    state = {"recipe": json.loads(json.dumps(rec.to_dict())), "data": {"num_samples": 8}, "network": tiny}
    check_compatible(state, dataclasses.replace(rec, val_every=3, checkpoint_every=1, log_every=1), 8, tiny,
                     Path("last.pt"))
    assert getattr(rec, field) != value
    with pytest.raises(CFINError, match=rf"last.pt belongs to a different run \({field}: checkpoint "):
        check_compatible(state, dataclasses.replace(rec, **{field: value}), 8, tiny, Path("last.pt"))
    with pytest.raises(CFINError, match=r"different run \(training-set size: checkpoint 8 vs now 9\)"):
        check_compatible(state, rec, 9, tiny, Path("last.pt"))
    with pytest.raises(CFINError, match=r"different run \(kv_share: checkpoint True vs now False\)"):
        check_compatible(state, rec, 8, {**tiny, "kv_share": False}, Path("last.pt"))


def test_a_checkpoint_from_before_lr_step_every_resumes_as_the_every_iteration_cosine_it_ran():
    from cfin.train.state import check_compatible

    rec = _toy_recipe(iterations=4)
    tiny = cfin.preset("tiny", scale=2).network()
    saved = {k: v for k, v in json.loads(json.dumps(rec.to_dict())).items() if k != "lr_step_every"}
    state = {"recipe": saved, "data": {"num_samples": 8}, "network": tiny}
    check_compatible(state, rec, 8, tiny, Path("last.pt"))  # lr_step_every 1: what it ran
    with pytest.raises(CFINError, match=r"different run \(lr_step_every: checkpoint 1 vs now 2\)"):
        check_compatible(state, rec.replace(lr_step_every=2), 8, tiny, Path("last.pt"))


# -- exact resume ------------------------------------------------------------------------------
def test_a_run_stopped_inside_a_learning_rate_step_resumes_to_identical_weights(tmp_path):
    """The official code's cosine steps once per epoch: stopped between two steps (iteration 5 of a
    step of 3), the resumed run takes the same learning rates as the run that never stopped."""
    rec = _toy_recipe(lr_step_every=3, val_images=0)
    straight, _ = _train_toy(tmp_path / "straight", rec)
    _train_toy(tmp_path / "stopped", rec, max_iterations=5)
    resumed, res = _train_toy(tmp_path / "stopped", rec)
    assert res.resumed_from == 5 and res.completed and _same_weights(resumed, straight)
    stopped = read_log(tmp_path / "stopped").set_index("iteration").lr
    straight = read_log(tmp_path / "straight").set_index("iteration").lr
    assert stopped[straight.index].tolist() == straight.tolist()
    assert stopped[4] == stopped[5] > stopped[6] == stopped[8] > stopped[10]  # a step after 3, 6 and 9


def test_interrupted_runs_resume_to_identical_weights(tmp_path):
    straight, res = _train_toy(tmp_path / "straight")
    assert res.completed and res.weights.is_file() and res.best_weights.is_file()
    assert res.best_psnr is not None and res.best_iteration in (5, 10)

    stopped, res = _train_toy(tmp_path / "stopped", max_iterations=6)
    assert not res.completed and res.iterations == 6 and res.weights is None
    assert not _same_weights(stopped, straight)
    resumed, res = _train_toy(tmp_path / "stopped")
    assert res.resumed_from == 6 and res.completed
    assert _same_weights(resumed, straight)

    with pytest.raises(RuntimeError, match="injected"):  # crash in step 7: last.pt is from step 4
        _train_toy(tmp_path / "crashed", fail_at=7)
    assert load_state(tmp_path / "crashed" / "last.pt")["iteration"] == 4
    resumed, res = _train_toy(tmp_path / "crashed")
    assert res.resumed_from == 4 and _same_weights(resumed, straight)

    log = read_log(tmp_path / "crashed")
    assert list(log.iteration) == [2, 4, 5, 6, 8, 10]  # the crashed segment's records are cut back
    assert log.val_psnr.notna().sum() == 2 and (log.time.diff().dropna() >= 0).all()


def test_a_run_asked_to_stop_checkpoints_there_and_resumes_to_identical_weights(tmp_path):
    """``should_stop`` (a Slurm job warned of its end): the run stops after the iteration it first
    answers True, writes last.pt at that iteration (between two periodic checkpoints), raises
    TrainingInterrupted, and a later call ends with the uninterrupted run's weights."""
    from cfin.train.trainer import TrainingInterrupted

    straight, _ = _train_toy(tmp_path / "straight")
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) >= 6  # asked after every iteration: True after the 6th

    with pytest.raises(TrainingInterrupted, match="iteration 6"):
        _train_toy(tmp_path / "warned", should_stop=should_stop)
    assert load_state(tmp_path / "warned" / "last.pt")["iteration"] == 6  # checkpoint_every is 4
    resumed, res = _train_toy(tmp_path / "warned", should_stop=lambda: False)
    assert res.resumed_from == 6 and res.completed and _same_weights(resumed, straight)


def test_cfin_tiny_resumes_exactly_through_its_gumbel_masks(tmp_path):
    rec = _toy_recipe(iterations=4, checkpoint_every=2, val_images=0, batch_size=2)
    data = ToyPatches(8, 8)

    def run(out, **kw):
        torch.manual_seed(0)
        model = cfin.CFIN(cfin.preset("tiny", scale=2))
        train(model, rec, data, out, device="cpu", progress=False, **kw)
        return model

    straight = run(tmp_path / "a")
    run(tmp_path / "b", max_iterations=3)
    resumed = run(tmp_path / "b")
    assert _same_weights(resumed, straight)
    assert cfin.load(tmp_path / "b" / "final.pt").config == cfin.preset("tiny", scale=2)


def test_a_run_resumes_only_the_network_it_trains(tmp_path):
    """Same parameter shapes, another function (mask, K/V hand-over): resuming it is an error
    naming the fields; another computation of the same network resumes."""
    rec = _toy_recipe(iterations=4, checkpoint_every=2, val_images=0, batch_size=2)
    tiny = cfin.preset("tiny", scale=2)

    def run(cfg, **kw):
        torch.manual_seed(0)
        return train(cfin.CFIN(cfg), rec, ToyPatches(8, 8), tmp_path, device="cpu", progress=False, **kw)

    run(tiny, max_iterations=2)
    with pytest.raises(CFINError, match=r"different run \(kv_share: checkpoint True vs now False; "
                                        r"mask: checkpoint 'gumbel' vs now 'softmax'\)"):
        run(tiny.replace(mask="softmax", kv_share=False))
    assert load_state(tmp_path / "last.pt")["iteration"] == 2
    assert run(tiny.with_impl("fast")).resumed_from == 2


def test_a_run_resumes_only_on_the_images_it_trains_on(tmp_path):
    """The same recipe and number of patches from other pictures (another --data-root) is another run."""
    from cfin.data import TrainPatchDataset, embedded_images

    rec = _toy_recipe(iterations=4, checkpoint_every=2, val_images=0, batch_size=2)
    pictures = embedded_images("train")

    def run(images, **kw):
        torch.manual_seed(0)
        data = TrainPatchDataset(images, 2, rec.patch_size, length=rec.iterations * rec.batch_size, seed=0)
        return train(cfin.CFIN(cfin.preset("tiny", scale=2)), rec, data, tmp_path, device="cpu", progress=False, **kw)

    run(pictures[:3], max_iterations=2)
    with pytest.raises(CFINError, match=r"different run \(training images: checkpoint 3 images \(.*\) vs now 2 images"):
        run(pictures[1:3])
    assert run(list(pictures[:3])).resumed_from == 2  # the same pictures, another list: resumes


def test_starting_over_leaves_no_weights_of_the_last_run(tmp_path):
    _train_toy(tmp_path, rec=_toy_recipe(iterations=4))
    assert (tmp_path / "final.pt").is_file() and (tmp_path / "best.pt").is_file()
    _, res = _train_toy(tmp_path, rec=_toy_recipe(iterations=4), resume=False, max_iterations=2)
    assert res.resumed_from is None and not (tmp_path / "final.pt").exists() and not (tmp_path / "best.pt").exists()


def test_a_run_started_over_and_stopped_before_its_first_checkpoint_does_not_resume_the_last_one(tmp_path):
    _train_toy(tmp_path, rec=_toy_recipe())
    with pytest.raises(RuntimeError, match="injected"):  # starting over, stopped in step 3 (checkpoint at 4)
        _train_toy(tmp_path, rec=_toy_recipe(), resume=False, fail_at=3)
    assert not (tmp_path / "last.pt").exists()
    straight, _ = _train_toy(tmp_path / "straight")
    model, res = _train_toy(tmp_path)  # a fresh run, not the abandoned one (whose best.pt is gone)
    assert res.resumed_from is None and res.best_weights.is_file() and _same_weights(model, straight)
    assert list(read_log(tmp_path).iteration) == [2, 4, 5, 6, 8, 10]


def test_cli_keeps_the_run_json_of_the_run_it_resumes(tmp_path, capsys):
    from cfin.cli import main

    out, config = tmp_path / "run", tmp_path / "net.json"
    config.write_text(json.dumps(cfin.preset("tiny", scale=2).to_dict()))
    argv = ["train", "--config", str(config), "--iterations", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    began = (out / "run.json").read_text()
    config.write_text(json.dumps(cfin.preset("tiny", scale=2, mask="softmax").to_dict()))  # edited since
    assert main(argv) == 2
    assert "different run (mask: checkpoint 'gumbel' vs now 'softmax')" in capsys.readouterr().err
    assert (out / "run.json").read_text() == began


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=4, val_images=0))
    ckpt = tmp_path / "run" / "last.pt"
    before = ckpt.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        real_save({"half": torch.zeros(1000)}, f)  # some bytes reach the temporary file ...
        raise OSError("disk full")  # ... then the write fails

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CFINError, match=f"cannot write {ckpt} \\(disk full\\)"):  # one message naming the file
        save_state(ckpt, load_state(ckpt))
    assert ckpt.read_bytes() == before
    with pytest.raises(CFINError, match="disk full"):  # the first checkpoint of a fresh run fails
        _train_toy(tmp_path / "fresh", rec=_toy_recipe(iterations=4, val_images=0))
    # the lock file stays (lock.py says why); its owner note goes with the process's hold
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == [".lock", "train_log.jsonl"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "final.pt", "last.pt", "train_log.jsonl"]


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=4, val_images=0))
    ckpt = tmp_path / "run" / "last.pt"
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    with pytest.raises(CFINError, match=f"{ckpt}.*corrupt"):
        _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=6, val_images=0))
    torch.save({"weights": torch.zeros(2)}, ckpt)
    with pytest.raises(CFINError, match="not a cfin training checkpoint"):
        _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=6, val_images=0))
    ckpt.write_bytes(good)
    with pytest.raises(CFINError, match="different run.*iterations: checkpoint 4 vs now 6"):
        _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=6, val_images=0))
    _, res = _train_toy(tmp_path / "run", rec=_toy_recipe(iterations=6, val_images=0), resume=False)
    assert res.resumed_from is None and load_state(ckpt)["iteration"] == 6


# -- learning ----------------------------------------------------------------------------------
def test_loss_decreases_on_real_patches(tmp_path):
    from cfin.data import TrainPatchDataset, embedded_images

    images = embedded_images("train")[:3]
    rec = recipe("smoke", iterations=20, batch_size=4, patch_size=8, lr=2e-3, log_every=5, val_images=0)
    data = TrainPatchDataset(images, 2, rec.patch_size, length=rec.iterations * rec.batch_size, seed=0)
    torch.manual_seed(0)
    res = train(cfin.CFIN(cfin.preset("tiny", scale=2)), rec, data, tmp_path, device="cpu", progress=False)
    with pytest.raises(CFINError, match="makes 8x8 LR patches.*asks for 16x16"):
        train(nn.Identity(), rec.replace(patch_size=16), data, tmp_path / "x", device="cpu")
    loss = read_log(tmp_path).loss
    assert res.final_loss == loss.iloc[-1]
    assert loss.iloc[-1] < 0.7 * loss.iloc[0], list(loss)


# -- several processes ---------------------------------------------------------------------------
DDP_SCRIPT = """
import os, sys, torch
sys.path.insert(0, {tests!r})
from test_train import TinySR, ToyPatches, _toy_recipe
from cfin.train import train
torch.manual_seed(0)
model = TinySR(dropout=0.0)
res = train(model, _toy_recipe(iterations=5, checkpoint_every=2, log_every=1, val_every=5, val_images=3),
            ToyPatches(), sys.argv[1], device="cpu", val_set=[ToyPatches(3, 12)[i] for i in range(3)],
            progress=False)
torch.save({{"state": model.state_dict(), "psnr": res.best_psnr}},
           os.path.join(sys.argv[2], os.environ["RANK"] + ".pt"))
"""


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(TESTS)))
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(out), str(dumps)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(dumps / f"{r}.pt") for r in "01")
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    assert r0["psnr"] == r1["psnr"]
    # only rank 0 wrote: one log record per iteration, no stray files
    assert sorted(p.name for p in out.iterdir()) == [".lock", "best.pt", "final.pt", "last.pt", "train_log.jsonl"]
    assert [json.loads(line)["iteration"] for line in (out / "train_log.jsonl").read_text().splitlines()] \
        == [1, 2, 3, 4, 5]
    assert load_state(out / "last.pt")["world_size"] == 2
    # 2 processes x 2 patches = 1 process x 4 patches (same global batches, averaged gradients)
    torch.manual_seed(0)
    single = TinySR(dropout=0.0)
    train(single, _toy_recipe(iterations=5, val_images=0), ToyPatches(), tmp_path / "single", device="cpu",
          progress=False)
    for k, v in single.state_dict().items():
        # the batch's gradient averaged over two processes (gloo's sum / 2) rather than in one mean:
        # rounding, which Adam passes on relatively (its step is lr m / sqrt(v)); measured 7e-9 on
        # weights of 0.1-0.2, and 1e-5 is 1,000 roundings of them
        torch.testing.assert_close(r0["state"][k], v, rtol=1e-5, atol=1e-5)


# -- command line --------------------------------------------------------------------------------
def test_cli_with_training_images_smaller_than_the_patch_writes_nothing(tmp_path, capsys):
    from cfin.cli import main

    root, out = _div2k_root(tmp_path / "data", size=40), tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--scale", "2", "--data-root", str(root), "--out", str(out),
                 "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == ("cfin train: error: training image '0001': LR 20x20 (HR 40x40) is "
                                               "smaller than the 24x24 LR patch at x2")
    assert not out.exists()


def test_cli_under_torchrun_splits_the_global_batch_and_writes_from_rank_0(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CFIN_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "cfin", "train", "--preset", "tiny", "--scale", "2", "--iterations", "2",
                           "--device", "cpu", "--out", str(out), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("training CFIN x2") == 1  # rank 0 prints
    assert "batch 4 (global: 2 per process x 2)" in proc.stdout
    assert json.loads((out / "run.json").read_text())["processes"] == 2
    assert sorted(p.name for p in out.iterdir()) == [".lock", "best.pt", "final.pt", "last.pt", "run.json",
                                                     "train_log.jsonl"]


def test_cli_refuses_a_global_batch_the_processes_cannot_split(tmp_path, capsys, monkeypatch):
    from cfin.cli import main

    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        "cfin train: error: recipe 'smoke' trains with a global batch of 4, which the 3 processes of torchrun "
        "cannot split evenly; use a --nproc_per_node that divides it")
    assert not (tmp_path / "run").exists()


def _div2k_root(root: Path, size: int = 100) -> Path:
    """A DIV2K layout: 0001-0800 and 0896-0900, links to one size x size picture."""
    import numpy as np

    from cfin.data.io import write_png

    train_hr, valid_hr = root / "DIV2K_train_HR", root / "DIV2K_valid_HR"
    train_hr.mkdir(parents=True)
    valid_hr.mkdir()
    picture = root / "picture.png"
    write_png(picture, np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    for i in [*range(1, 801), *range(896, 901)]:
        ((train_hr if i <= 800 else valid_hr) / f"{i:04d}.png").symlink_to(picture)
    return root


def test_the_data_label_names_the_validation_images_the_recipe_uses(tmp_path):
    from cfin.commands.train import build_data

    root = _div2k_root(tmp_path / "data")
    labels = {name: build_data(str(root), 2, recipe(name, num_workers=0), False)[2] for name in ("smoke", "paper")}
    assert labels["smoke"] == f"DIV2K 1-800 (validation: DIV2K 896-897) under {root}"  # val_images=2
    assert labels["paper"] == f"DIV2K 1-800 (validation: DIV2K 896-900) under {root}"  # the official code's
    assert "validation: none)" in build_data(str(root), 2, recipe("smoke", val_images=0), False)[2]
    assert build_data(None, 2, recipe("smoke"), False)[2] == \
        ("the bundled scikit-image pictures (train split; validation: the test split's chelsea, coffee; the test "
         "split is also the evaluation set)")
    # the curves' validation panel names the images, not the remark after the ";"
    from cfin.report.grids import RowResult
    from cfin.report.plots import _validation_images

    def named(label):
        return _validation_images([RowResult(None, [{"data": {"train": label}}])])
    assert named(build_data(None, 2, recipe("smoke"), False)[2]) == "the test split's chelsea, coffee"
    assert named(labels["paper"]) == "DIV2K 896-900"


@pytest.mark.parametrize("scale", [2, 3])
def test_the_patches_cfin_train_takes_are_the_papers(tmp_path, monkeypatch, scale):
    """What ``cfin train`` and ``run_all.py`` feed the network (paper IV-B, the official EDSR-style
    loader): the recipe's LR patch cut from MATLAB bicubic of the HR, the HR patch at ``scale`` x its
    place, and one of the 8 flips and rotations, hflip, vflip and transpose each with p = 1/2, the
    same for both."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    from cfin.commands.train import build_data
    from cfin.data.io import read_image
    from cfin.imresize import imresize, modcrop

    monkeypatch.setenv("CFIN_CACHE_DIR", str(tmp_path / "cache"))
    root = _div2k_root(tmp_path / "data", size=62)  # 800 links to one picture: its windows are all there is
    rec = recipe("smoke", patch_size=12, iterations=60, num_workers=0)
    patches = build_data(str(root), scale, rec, False)[0]
    hr = modcrop(read_image(root / "picture.png"), scale)
    lr = imresize(hr, 1 / scale)
    p = rec.patch_size
    windows = sliding_window_view(lr, (p, p, 3))[:, :, 0]
    flags = []
    for i in range(len(patches)):
        item = patches[i]
        got_lr, got_hr = (item[k].numpy().transpose(1, 2, 0) for k in ("lr", "hr"))
        assert got_lr.shape == (p, p, 3) and got_hr.shape == (scale * p, scale * p, 3)
        found = []
        for f in np.ndindex(2, 2, 2):  # undo transpose, vflip, hflip (applied in the other order)
            a = got_lr.transpose(1, 0, 2) if f[2] else got_lr
            a = a[:, ::-1] if f[0] else a
            a = a[::-1] if f[1] else a
            found += [(f, y, x) for y, x in zip(*np.nonzero(np.all(windows == a, axis=(2, 3, 4))))]
        assert len(found) == 1, f"item {i}: LR patch is not one window of the MATLAB bicubic LR: {found}"
        (h, v, t), y, x = found[0]
        want = hr[scale * y:scale * (y + p), scale * x:scale * (x + p)]
        want = want[::-1] if v else want
        want = want[:, ::-1] if h else want
        want = want.transpose(1, 0, 2) if t else want
        np.testing.assert_array_equal(got_hr, want, err_msg=f"item {i}: HR patch not aligned with the LR one")
        flags.append((h, v, t))
    flags = np.array(flags, dtype=float)
    assert len({tuple(f) for f in flags}) == 8
    assert np.all(np.abs(flags.mean(axis=0) - 0.5) < 0.12), flags.mean(axis=0)  # 240 draws: sd 0.032


def test_cli_trains_resumes_and_reports_bad_input(tmp_path, capsys):
    from cfin.cli import main

    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--scale", "2", "--iterations", "3", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert str(out / "last.pt") in text and "best validation PSNR" in text
    model = cfin.load(out / "final.pt")
    assert model.config.scale == 2 and json.loads((out / "run.json").read_text())["recipe"]["iterations"] == 3
    assert main(argv) == 0 and "resumed from iteration 3" in capsys.readouterr().out
    assert main(["train", "--preset", "tiny", "--recipe", "weekly", "--out", str(out)]) == 2
    assert "smoke, short, paper" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["99999999999999999999", str(2**63), "-1"])
def test_cli_rejects_a_seed_out_of_range_before_starting(tmp_path, capsys, seed):
    from cfin.cli import main

    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--no-progress", "--seed", seed]) == 2
    stdout, err = capsys.readouterr()
    assert stdout == "" and err.strip() == \
        f"cfin train: error: --seed takes an integer from 0 to 2**63 - 1 = {2**63 - 1}, got {seed}"
    assert not out.exists()


@pytest.mark.numerics
def test_cli_trains_on_the_fast_path(tmp_path, capsys):
    """--impl fast trains the same network by the fast path; its checkpoint says so and loads
    either way (one state dict)."""
    from cfin.cli import main

    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--scale", "2", "--iterations", "2", "--out", str(out), "--no-progress"]
    assert main([*argv, "--impl", "fast"]) == 0
    saved = json.loads((out / "run.json").read_text())["config"]
    assert saved["cgm_impl"] == "conv" and saved["fused_attention"] is True
    fast, faithful = cfin.load(out / "final.pt"), cfin.load(out / "final.pt", impl="faithful")
    assert fast.config.cgm_impl == "conv" and faithful.config == fast.config.with_impl("faithful")
    x, outs = torch.rand(1, 3, 8, 8) * 255, []
    for model in (fast, faithful):  # the same Gumbel draws from the same seed
        torch.manual_seed(0)
        with torch.no_grad():
            outs.append(model(x))

    def again(dtype):
        torch.manual_seed(0)
        with torch.no_grad():
            return copy.deepcopy(faithful).to(dtype)(x.to(dtype)), None
    noise = faithful_noise(("trained tiny", str(out)), again)["max_abs_diff"]
    assert_within("fast vs faithful: outputs, sampled masks", outs[0], outs[1], noise_bound(OUT_ATOL, noise), noise)
    capsys.readouterr()
    assert main([*argv, "--impl", "faithful"]) == 0  # the same run, resumed on the other path
    assert "resumed from iteration 2" in capsys.readouterr().out


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    """Not the private 0600 of the temporary file: 0666 less the umask, like open(path, 'w')."""
    import os

    from cfin.atomic import atomic_write_json

    old = os.umask(0o027)
    try:
        path = atomic_write_json(tmp_path / "r.json", {"a": 1})
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
