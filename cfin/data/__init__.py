"""Datasets: image IO, the DIV2K and benchmark layouts, the bundled default images, training patches."""
from cfin.data.cache import bicubic_lr, cached_bicubic_lr, default_cache_dir
from cfin.data.embedded import EmbeddedSet, embedded_images
from cfin.data.io import read_image, write_png
from cfin.data.layouts import STANDARD_BENCHMARKS, BenchmarkSet, available_datasets, div2k_pairs, open_dataset
from cfin.data.pairs import ArrayPair, ImagePair, ImageSet, Sample
from cfin.data.patches import TrainPatchDataset

__all__ = [
    "ArrayPair", "BenchmarkSet", "EmbeddedSet", "ImagePair", "ImageSet", "STANDARD_BENCHMARKS", "Sample",
    "TrainPatchDataset", "available_datasets", "bicubic_lr", "cached_bicubic_lr", "default_cache_dir",
    "div2k_pairs", "embedded_images", "open_dataset", "read_image", "write_png",
]
