"""Dataset layouts, the LR cache, image IO errors, the embedded pictures and training patches."""
import os

import numpy as np
import pytest
import torch

import cfin.data.cache as cache_mod
from cfin.data import (BenchmarkSet, EmbeddedSet, TrainPatchDataset, available_datasets, div2k_pairs,
                       embedded_images, read_image, write_png)
from cfin.data.embedded import SPLITS
from cfin.errors import CFINError
from cfin.imresize import imresize, modcrop


def _img(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("CFIN_CACHE_DIR", str(d))
    return d


@pytest.fixture
def bench_root(tmp_path):
    """benchmark/Toy/HR with a PNG (odd size), an .npy, a gray PNG and an RGBA PNG."""
    hr = tmp_path / "data" / "benchmark" / "Toy" / "HR"
    hr.mkdir(parents=True)
    write_png(hr / "a.png", _img(37, 30, 0))
    np.save(hr / "b.npy", _img(24, 28, 1))
    from PIL import Image
    Image.fromarray(_img(20, 20, 2)[:, :, 0]).save(hr / "c.png")
    Image.fromarray(np.dstack([_img(20, 24, 3), np.full((20, 24), 9, np.uint8)])).save(hr / "d.png")
    return tmp_path / "data"


def test_read_image_conversions(bench_root):
    hr = bench_root / "benchmark" / "Toy" / "HR"
    assert read_image(hr / "a.png").shape == (37, 30, 3)
    np.testing.assert_array_equal(read_image(hr / "b.npy"), _img(24, 28, 1))
    gray = read_image(hr / "c.png")
    assert gray.shape == (20, 20, 3) and np.all(gray[..., 0] == gray[..., 2])
    np.testing.assert_array_equal(read_image(hr / "d.png"), _img(20, 24, 3))


def test_read_image_errors(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CFINError, match="broken.png"):
        read_image(bad)
    np.save(tmp_path / "f.npy", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(CFINError, match=r"f\.npy.*uint8"):
        read_image(tmp_path / "f.npy")
    np.save(tmp_path / "s.npy", np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(CFINError, match=r"s\.npy.*shape"):
        read_image(tmp_path / "s.npy")
    with pytest.raises(CFINError, match="not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(CFINError, match="unsupported"):
        read_image(tmp_path / "x.jpg")


def test_benchmark_without_lr_makes_and_caches_bicubic(bench_root, cache_dir, monkeypatch):
    data = BenchmarkSet(bench_root, "Toy", 4)
    assert data.names == ["a", "b", "c", "d"] and len(data) == 4
    samples = list(data)
    a = samples[0]
    assert a.hr.shape == (36, 28, 3) and a.lr.shape == (9, 7, 3) and a.lr.dtype == np.uint8
    np.testing.assert_array_equal(a.lr, imresize(modcrop(_img(37, 30, 0), 4), 1 / 4))
    cached = sorted(p.name for p in cache_dir.rglob("*.png"))
    assert cached == ["ax4.png", "bx4.png", "cx4.png", "dx4.png"]

    def no_resize(*args, **kwargs):
        raise AssertionError("cache not used")
    monkeypatch.setattr(cache_mod, "bicubic_lr", no_resize)
    again = list(BenchmarkSet(bench_root, "Toy", 4))
    np.testing.assert_array_equal(again[0].lr, a.lr)
    # a newer HR file invalidates its cache entry
    hr_a = bench_root / "benchmark" / "Toy" / "HR" / "a.png"
    st = hr_a.stat()
    os.utime(hr_a, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 12))
    with pytest.raises(AssertionError, match="cache not used"):
        BenchmarkSet(bench_root, "Toy", 4)[0]


def test_an_hr_file_replaced_by_an_older_one_remakes_its_cache_entry(bench_root, cache_dir):
    """A dataset unpacked over an earlier one (unzip, tar, cp -p) brings files older than the cache."""
    hr_a = bench_root / "benchmark" / "Toy" / "HR" / "a.png"
    BenchmarkSet(bench_root, "Toy", 4)[0]
    new = _img(37, 30, 7)
    write_png(hr_a, new)
    st = hr_a.stat()
    os.utime(hr_a, ns=(st.st_atime_ns, st.st_mtime_ns - 10 ** 12))  # the archive's date: before the entry
    np.testing.assert_array_equal(BenchmarkSet(bench_root, "Toy", 4)[0].lr, imresize(modcrop(new, 4), 1 / 4))


@pytest.mark.parametrize("granularity_ns", [100, 1_000, 10 ** 9, 2 * 10 ** 9])
def test_a_cache_on_a_coarser_clock_than_the_data_still_hits(bench_root, cache_dir, monkeypatch, granularity_ns):
    """The entry's stamp is the HR file's time as the cache's filesystem keeps it: cut to 100 ns (NTFS,
    SMB), 1 us, 1 s (HFS+, ext4 with small inodes) or 2 s (FAT) where the data's keeps nanoseconds.
    An entry so stamped is the HR file's (it was remade every time, the cache never used)."""
    real_utime = os.utime

    def coarse_utime(path, times=None, *, ns=None, **kw):
        if ns is not None:
            ns = tuple(t - t % granularity_ns for t in ns)
        return real_utime(path, times, ns=ns, **kw) if times is not None else real_utime(path, ns=ns, **kw)
    hr_a = bench_root / "benchmark" / "Toy" / "HR" / "a.png"
    st = hr_a.stat()
    os.utime(hr_a, ns=(st.st_atime_ns, 1_700_000_001_123_456_789))
    monkeypatch.setattr(os, "utime", coarse_utime)
    first = BenchmarkSet(bench_root, "Toy", 4)[0].lr

    def no_resize(*args, **kwargs):
        raise AssertionError("cache not used")
    monkeypatch.setattr(cache_mod, "bicubic_lr", no_resize)
    np.testing.assert_array_equal(BenchmarkSet(bench_root, "Toy", 4)[0].lr, first)
    real_utime(hr_a, ns=(st.st_atime_ns, 1_700_000_001_123_456_789 - 10 ** 12))  # an older file over it
    with pytest.raises(AssertionError, match="cache not used"):
        BenchmarkSet(bench_root, "Toy", 4)[0]


def test_a_damaged_cache_entry_is_remade(bench_root, cache_dir):
    first = BenchmarkSet(bench_root, "Toy", 4)[0].lr
    entry = next(cache_dir.rglob("ax4.png"))
    entry.write_bytes(entry.read_bytes()[:40])  # truncated, newer than the HR file
    np.testing.assert_array_equal(BenchmarkSet(bench_root, "Toy", 4)[0].lr, first)
    np.testing.assert_array_equal(read_image(entry), first)  # and repaired


def test_an_unwritable_cache_says_so(bench_root, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("CFIN_CACHE_DIR", str(tmp_path / "afile"))
    with pytest.raises(CFINError, match="cannot write the LR cache entry .*; set CFIN_CACHE_DIR to a writable"):
        BenchmarkSet(bench_root, "Toy", 4)[0]


def _unreadable(monkeypatch, folder):
    """``folder`` as a chmod 000 folder looks to anyone but root: its entries cannot be looked at."""
    from pathlib import Path

    def refuse(real):
        def method(self, *args, **kwargs):
            if folder in Path(self).parents or (real.__name__ == "iterdir" and Path(self) == folder):
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)
        return method
    for name in ("stat", "iterdir"):
        monkeypatch.setattr(Path, name, refuse(getattr(Path, name)))


def test_an_unreadable_data_root_is_one_message_naming_it(bench_root, monkeypatch):
    _unreadable(monkeypatch, bench_root)
    for call in (lambda: available_datasets(bench_root), lambda: BenchmarkSet(bench_root, "Toy", 4),
                 lambda: div2k_pairs(bench_root, 4)):
        with pytest.raises(CFINError, match=f"cannot read {bench_root}.*Permission denied\\); make it readable"):
            call()


def test_benchmark_with_lr_folder_and_size_check(bench_root, cache_dir):
    root = bench_root / "benchmark" / "Toy"
    lr_dir = root / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for name, (h, w) in {"a": (18, 15), "b": (12, 14), "c": (10, 10), "d": (10, 12)}.items():
        write_png(lr_dir / f"{name}x2.png", np.full((h, w, 3), 7, np.uint8))
    data = BenchmarkSet(bench_root, "Toy", 2)
    a = data[0]
    assert np.all(a.lr == 7) and a.hr.shape == (36, 30, 3)
    assert not cache_dir.exists()  # LR came from disk, nothing computed
    write_png(lr_dir / "a.png", np.full((18, 15, 3), 9, np.uint8))  # beside ax2.png: the <name>x<s> file is the LR
    assert BenchmarkSet(bench_root, "Toy", 2).pairs[0].lr_path == lr_dir / "ax2.png"
    (lr_dir / "a.png").unlink()
    write_png(lr_dir / "bx2.png", np.zeros((11, 14, 3), np.uint8))
    with pytest.raises(CFINError, match=r"bx2\.png.*11x14.*must be 12x14"):
        data[1]
    write_png(lr_dir / "bx2.png", np.zeros((12, 14, 3), np.uint8))
    (lr_dir / "cx2.png").unlink()
    with pytest.raises(CFINError, match=r"no LR image for c\.png"):
        BenchmarkSet(bench_root, "Toy", 2)


def test_missing_dataset_messages(bench_root, tmp_path):
    assert available_datasets(bench_root) == ["Toy"]
    with pytest.raises(CFINError, match=r"'Set5' not found.*benchmark/Set5/HR.*datasets found: Toy"):
        BenchmarkSet(bench_root, "Set5", 4)
    with pytest.raises(CFINError, match="does not exist"):
        BenchmarkSet(tmp_path / "nowhere", "Set5", 4)
    (bench_root / "benchmark" / "Empty" / "HR").mkdir(parents=True)
    with pytest.raises(CFINError, match="holds no images"):
        BenchmarkSet(bench_root, "Empty", 4)
    # root may also be the benchmark folder itself
    assert BenchmarkSet(bench_root / "benchmark", "Toy", 2).names[0] == "a"


def test_an_hr_image_of_another_type_is_not_left_out_silently(bench_root):
    """Set14 copied with a .bmp among its PNGs would be scored over fewer images than the paper's."""
    from PIL import Image
    hr = bench_root / "benchmark" / "Toy" / "HR"
    (hr / "notes.txt").write_text("not an image")
    assert len(BenchmarkSet(bench_root, "Toy", 2)) == 4
    Image.fromarray(_img(20, 20, 4)).save(hr / "zebra.bmp")
    Image.fromarray(_img(20, 20, 5)).save(hr / "man.jpg")
    with pytest.raises(CFINError, match=r"^\S+/Toy/HR holds 2 image\(s\) of a type cfin does not read \(man\.jpg, "
                                        r"zebra\.bmp\); expected \.png or \.npy"):
        BenchmarkSet(bench_root, "Toy", 2)


def test_div2k_layout(tmp_path, cache_dir):
    root = tmp_path / "d"
    (root / "DIV2K" / "DIV2K_train_HR").mkdir(parents=True)
    lr_dir = root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3"
    lr_dir.mkdir(parents=True)
    for i in (1, 2):
        hr = _img(30, 33, i)
        write_png(root / "DIV2K" / "DIV2K_train_HR" / f"{i:04d}.png", hr)
        write_png(lr_dir / f"{i:04d}x3.png", imresize(hr, 1 / 3))
    write_png(lr_dir / "0002x3.png", _img(10, 11, 7))  # not the bicubic of its HR: read, not remade
    pairs = div2k_pairs(root, 3, ids=[1, 2])
    assert [p.name for p in pairs] == ["0001", "0002"]
    assert [p.lr_path for p in pairs] == [lr_dir / "0001x3.png", lr_dir / "0002x3.png"]
    s = pairs[1].load()
    assert s.lr.shape == (10, 11, 3) and s.hr.shape == (30, 33, 3)
    np.testing.assert_array_equal(s.lr, _img(10, 11, 7))
    with pytest.raises(CFINError, match=r"DIV2K_train_HR lacks 1 of the 2 DIV2K images it needs \(0003\.png\)"):
        div2k_pairs(root, 3, ids=[1, 3])
    # a partial copy: one message that counts what is missing (the default train ids 1-800)
    with pytest.raises(CFINError, match=r"lacks 798 of the 800 DIV2K images 0001-0800 it needs "
                                        r"\(0003\.png, 0004\.png, 0005\.png, \.\.\.\)"):
        div2k_pairs(root, 3)
    with pytest.raises(CFINError, match="DIV2K not found.*DIV2K_valid_HR"):
        div2k_pairs(root, 3, split="valid")
    (root / "DIV2K" / "DIV2K_valid_HR").mkdir()
    write_png(root / "DIV2K" / "DIV2K_valid_HR" / "0801.png", _img(30, 33, 1))
    with pytest.raises(CFINError, match=r"lacks 99 of the 100 DIV2K images 0801-0900 it needs \(0802\.png, "):
        div2k_pairs(root, 3, split="valid")  # DIV2K's validation images are 0801-0900
    with pytest.raises(CFINError, match="split"):
        div2k_pairs(root, 3, split="test")
    # no LR folder for x2: made and cached
    two = div2k_pairs(root, 2, ids=[1])[0].load()
    assert two.lr.shape == (15, 16, 3) and two.hr.shape == (30, 32, 3)
    assert len(list(cache_dir.rglob("0001x2.png"))) == 1


def test_embedded_split():
    assert not set(SPLITS["train"]) & set(SPLITS["test"])
    test = embedded_images("test")
    assert [n for n, _ in test] == list(SPLITS["test"])
    assert all(img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 for _, img in test)
    data = EmbeddedSet(4)
    assert data.name == "embedded" and len(data) == len(test)
    s = data[0]
    np.testing.assert_array_equal(s.lr, imresize(modcrop(test[0][1], 4), 1 / 4))
    with pytest.raises(CFINError, match="valid: train, test"):
        embedded_images("val")


# --- training patches ---------------------------------------------------------------------------

def test_patches_are_a_function_of_seed_and_index():
    imgs = [_img(40, 52, 5), ("named", _img(36, 36, 6))]
    a = TrainPatchDataset(imgs, scale=2, patch_size=8, length=20, seed=3)
    b = TrainPatchDataset(imgs, scale=2, patch_size=8, length=20, seed=3)
    late = b[17]  # access order does not matter
    for i in range(20):
        x = a[i]
        assert x["lr"].shape == (3, 8, 8) and x["hr"].shape == (3, 16, 16)
        assert x["lr"].dtype == torch.float32 and 0 <= x["lr"].min() and x["hr"].max() <= 255
    assert torch.equal(a[17]["lr"], late["lr"]) and torch.equal(a[17]["hr"], late["hr"])
    c = TrainPatchDataset(imgs, scale=2, patch_size=8, length=20, seed=4)
    assert any(not torch.equal(a[i]["lr"], c[i]["lr"]) for i in range(5))
    assert not torch.equal(a[0]["lr"], a[1]["lr"])
    with pytest.raises(IndexError):
        a[20]


def test_patch_alignment_exact_under_augmentation():
    rng = np.random.default_rng(7)
    lr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    hr = np.kron(lr, np.ones((3, 3, 1), np.uint8))  # each LR pixel is a 3x3 HR block
    data = TrainPatchDataset([(lr, hr)], scale=3, patch_size=6, length=32, seed=0)
    for i in range(32):
        x = data[i]
        assert torch.equal(x["hr"][:, 1::3, 1::3], x["lr"])


def _dihedral_views(a):
    """The 8 rotations and reflections of an H x W x C array (numpy's rot90 of it and of its transpose)."""
    return [np.rot90(b, k) for b in (a, a.transpose(1, 0, 2)) for k in range(4)]


def test_patches_draw_every_position_and_all_eight_transforms():
    """Every patch position, the last row and column included, and each of the 8 dihedral
    transforms (paper IV-B: flips and 90-degree rotations) are drawn, roughly uniformly."""
    lr = np.arange(100, dtype=np.uint8).reshape(10, 10, 1).repeat(3, axis=2)  # every pixel distinct
    hr = np.kron(lr, np.ones((2, 2, 1), np.uint8))
    n = 400
    plain = TrainPatchDataset([(lr, hr)], scale=2, patch_size=8, augment=False, length=n, seed=0)
    positions = []
    for i in range(n):
        positions.append(divmod(int(plain[i]["lr"][0, 0, 0]), 10))  # the patch's top-left pixel
    counts = {p: positions.count(p) for p in set(positions)}
    assert set(counts) == {(y, x) for y in range(3) for x in range(3)}  # h - p + 1 = 3 places per axis
    assert min(counts.values()) > n / 9 / 2

    square = lr[:8, :8]
    views = _dihedral_views(square)
    aug = TrainPatchDataset([(square, np.kron(square, np.ones((2, 2, 1), np.uint8)))], scale=2, patch_size=8,
                            length=n, seed=0)
    kinds = []
    for i in range(n):
        got = aug[i]["lr"].numpy().transpose(1, 2, 0)
        kinds.append(next(k for k, v in enumerate(views) if np.array_equal(got, v)))
    assert sorted(set(kinds)) == list(range(8)) and min(kinds.count(k) for k in range(8)) > n / 8 / 2


def test_patch_alignment_with_bicubic_lr():
    hr = _img(64, 64, 8).astype(np.float64)
    hr = np.clip(imresize(imresize(hr, 1 / 4), 4), 0, 255).astype(np.uint8)  # smooth, so borders matter little
    data = TrainPatchDataset([hr], scale=2, patch_size=12, augment=False, length=8, seed=1)
    for i in range(8):
        x = data[i]
        hr_patch = x["hr"].numpy().transpose(1, 2, 0).astype(np.uint8)
        lr_patch = x["lr"].numpy().transpose(1, 2, 0)
        down = imresize(hr_patch, 0.5).astype(np.float64)
        inner = np.abs(down - lr_patch)[3:-3, 3:-3]  # away from the patch's own padding
        assert inner.max() <= 1


def test_patch_dataset_errors(tmp_path, cache_dir):
    with pytest.raises(CFINError, match=r"'tiny'.*LR 5x6.*smaller than the 8x8"):
        TrainPatchDataset([("tiny", _img(10, 12, 0))], scale=2, patch_size=8)
    with pytest.raises(CFINError, match="expected an HR array"):
        TrainPatchDataset(["not an image"], scale=2)
    with pytest.raises(CFINError, match="no training images"):
        TrainPatchDataset([], scale=2)
    # lazy pairs are loaded when used, but their sizes are checked from the files' headers at once
    (tmp_path / "DIV2K_train_HR").mkdir()
    write_png(tmp_path / "DIV2K_train_HR" / "0001.png", _img(12, 12, 0))
    write_png(tmp_path / "DIV2K_train_HR" / "0002.png", _img(18, 16, 0))
    data = TrainPatchDataset(div2k_pairs(tmp_path, 2, ids=[2]), scale=2, patch_size=8, length=4)
    assert not data._loaded
    with pytest.raises(CFINError, match=r"^training image '0001': LR 6x6 \(HR 12x12\) is smaller than the 8x8 LR "
                                        r"patch at x2$"):
        TrainPatchDataset(div2k_pairs(tmp_path, 2, ids=[2, 1]), scale=2, patch_size=8, length=4)
    lr_dir = tmp_path / "DIV2K_train_LR_bicubic" / "X2"  # a given LR file: its own size
    lr_dir.mkdir(parents=True)
    write_png(lr_dir / "0001x2.png", _img(6, 6, 0))
    write_png(lr_dir / "0002x2.png", _img(9, 8, 0))
    assert TrainPatchDataset(div2k_pairs(tmp_path, 2, ids=[2]), scale=2, patch_size=8, length=4)[0]["lr"].shape == \
        (3, 8, 8)
    with pytest.raises(CFINError, match=r"'0002': LR 9x8 \(HR 18x16\) is smaller than the 9x9"):
        TrainPatchDataset(div2k_pairs(tmp_path, 2, ids=[2]), scale=2, patch_size=9, length=4)


def test_a_given_lr_of_the_wrong_size_stops_before_any_work(tmp_path, bench_root, cache_dir):
    """A precomputed LR file that is not HR // scale is named when the dataset is opened (from the files'
    headers), not when training first draws it or evaluation reaches it."""
    (tmp_path / "DIV2K_train_HR").mkdir()
    lr_dir = tmp_path / "DIV2K_train_LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for i in (1, 2):
        write_png(tmp_path / "DIV2K_train_HR" / f"{i:04d}.png", _img(21, 19, i))
        write_png(lr_dir / f"{i:04d}x2.png", _img(10, 9, i))
    assert len(div2k_pairs(tmp_path, 2, ids=[1, 2])) == 2
    write_png(lr_dir / "0002x2.png", _img(20, 18, 2))  # at x1, say: a mislaid X1 folder's file
    with pytest.raises(CFINError, match=r"^\S+0002x2\.png: LR is 20x18 but HR is 21x19; at x2 the LR must be 10x9 "):
        div2k_pairs(tmp_path, 2, ids=[1, 2])
    lr_dir = bench_root / "benchmark" / "Toy" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for name, (h, w) in {"a": (18, 15), "b": (12, 14), "c": (10, 10), "d": (10, 13)}.items():
        write_png(lr_dir / f"{name}x2.png", np.full((h, w, 3), 7, np.uint8))
    with pytest.raises(CFINError, match=r"dx2\.png: LR is 10x13 but HR is 20x24; at x2 the LR must be 10x12"):
        BenchmarkSet(bench_root, "Toy", 2)
