"""Small configs that train in seconds, shared by the trainer, store and CLI tests."""

from landscape.config import resolve_config


def tiny_config(**train):
    """digits, 300 train / 100 test, MLP 64-32-10, a few epochs."""
    overrides = {
        "data": {"subset": 300, "test_subset": 100},
        "model": {"widths": [32]},
        "optim": {"batch_size": 64},
        "train": {"runs": 2, "epochs": 3, "checkpoints": 4, "log_points": 6, **train},
    }
    return resolve_config(preset="quick", overrides=overrides)


TINY_FLAGS = [
    "--subset",
    "300",
    "--test-subset",
    "100",
    "--widths",
    "32",
    "--batch-size",
    "64",
    "--runs",
    "2",
    "--epochs",
    "3",
    "--checkpoints",
    "4",
    "--set",
    "train.log_points=6",
]
