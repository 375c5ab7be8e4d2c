"""Training: named recipes (the paper's schedule and shorter budgets) and a resumable, multi-GPU loop."""
from cfin.train.recipes import RECIPES, Recipe, recipe
from cfin.train.trainer import TrainResult, train

__all__ = ["RECIPES", "Recipe", "recipe", "TrainResult", "train"]
