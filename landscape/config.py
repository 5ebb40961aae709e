"""Typed experiment configuration, presets, and validation with clear messages.

An experiment is four frozen sections (`data`, `model`, `optim`, `train`). Layers are merged in
order preset < config file < command-line overrides; every layer is a plain nested dict, so a
TOML preset, a user's file and `--set optim.lr=0.01` all speak the same keys. Unknown keys and
bad values raise `ConfigError` with the allowed values.

>>> cfg = resolve_config(preset="quick", overrides={"train": {"runs": 2}})
>>> cfg.train.runs, cfg.data.name
(2, 'digits')
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from landscape.config_checks import check_value, coerce
from landscape.errors import ConfigError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # digits | mnist | fashion-mnist | cifar10 | ring | line | modular
    subset: int | None = None  # keep this many training examples (stratified, seeded); None: all
    test_subset: int | None = None  # likewise for the test set
    seed: int = 0  # seeds subsets and the sampling of synthetic data; fixed per experiment
    ring_points: int = 5000  # ring: training pixels sampled from the image
    ring_test_points: int = 4096  # ring: held-out pixels (disjoint from the training pixels)
    ring_resolution: int = 1024  # ring: the image is resolution x resolution pixels
    line_points: int = 100  # line: training points (the blog's 100)
    line_test_points: int = 100  # line: held-out points from the same distribution
    modulus: int = 97  # modular: p
    operation: str = "add"  # modular: add | sub | mul | div  (a op b) mod p
    train_fraction: float = 0.3  # modular: fraction of all (a, b) pairs used for training


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"  # mlp | lenet | resnet (ours) | lenet-paper | resnet-paper (authors' code)
    widths: tuple[int, ...] = (512,)  # mlp: hidden widths; (512,) is the paper's one layer of 512
    activation: str = "relu"  # relu | leaky_relu (slope 0.01)
    # xavier_uniform (the paper's text: Glorot weights, bias 0) | xavier_uniform_weights (the
    # authors' code: Glorot weights, PyTorch's default biases) | kaiming (fan-in) | default
    init: str = "xavier_uniform"
    bias_init: float | None = None  # None: 0 for xavier_uniform, 0.1 for kaiming (ring blog)


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam | adamw (decoupled weight decay) | sgd
    lr: float = 1e-3  # the paper's Adam learning rate
    batch_size: int = 128  # examples per step; 0 means full batch
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw)
    betas: tuple[float, float] = (0.9, 0.999)  # adam/adamw
    momentum: float = 0.0  # sgd
    nesterov: bool = False  # sgd, needs momentum > 0


@dataclass(frozen=True)
class TrainConfig:
    mode: str = "both"  # normal | overfit | both
    runs: int = 4  # seeds per mode; run k of both modes shares its initial parameters
    seed: int = 0  # run k is seeded with seed + k
    epochs: int = 100  # passes over the (mode's) training set; ignored when steps > 0
    steps: int = 0  # optimizer steps; 0: use epochs
    copies: int = 0  # overfit: copies of the corrupted test set; 0: floor(n_train/n_test) + 1
    overfit_noise: float = 1.0  # overfit on regression: noise std, in units of std(y_train)
    checkpoints: int = 16  # log-spaced checkpoint steps (the final step is always one)
    log_points: int = 60  # history points: half log-spaced, half evenly spaced, plus 0 and last
    loss: str = "auto"  # auto (cross_entropy or mse from the task) | cross_entropy | mse


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def identity(self) -> dict[str, Any]:
        """Everything that defines a run's numbers; `train.runs` only says how many."""
        d = self.to_dict()
        del d["train"]["runs"]
        return d


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


def known_keys() -> list[str]:
    """Every settable key, as `section.name`."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


def _build_section(name: str, values: dict[str, Any]) -> Any:
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"unknown config key '{name}.{key}'; known keys in [{name}]: "
                + ", ".join(sorted(fields))
            )
        full = f"{name}.{key}"
        kwargs[key] = coerce(full, value, hints[key])
        check_value(full, kwargs[key])
    return cls(**kwargs)


def _check_combinations(cfg: ExperimentConfig) -> None:
    if cfg.optim.nesterov and cfg.optim.momentum <= 0:
        raise ConfigError(
            "config: optim.nesterov = true needs optim.momentum > 0, found "
            f"{cfg.optim.momentum}; set optim.momentum (e.g. 0.9) or nesterov = false"
        )
    if any(w < 1 for w in cfg.model.widths):
        raise ConfigError(
            f"config key 'model.widths': widths must be >= 1, found {cfg.model.widths}"
        )
    if not 0 < cfg.data.train_fraction < 1:
        raise ConfigError(
            f"config key 'data.train_fraction': expected 0 < f < 1, found {cfg.data.train_fraction}"
        )
    if cfg.model.name != "mlp" and cfg.data.name in ("ring", "line", "modular"):
        raise ConfigError(
            f"config: model {cfg.model.name!r} needs image data, but data.name is "
            f"{cfg.data.name!r}; use model.name = 'mlp' or an image dataset "
            "(digits, mnist, fashion-mnist, cifar10)"
        )
    if cfg.model.init == "xavier_uniform_weights" and cfg.model.bias_init is not None:
        raise ConfigError(
            f"config: model.bias_init = {cfg.model.bias_init} with model.init = "
            "'xavier_uniform_weights', which keeps PyTorch's default biases; remove bias_init, "
            "or use model.init = 'xavier_uniform' for constant biases"
        )


def total_steps(cfg: ExperimentConfig, n_train: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) of `cfg` on a training set of n_train rows."""
    batch = min(cfg.optim.batch_size or n_train, n_train)
    per_epoch = math.ceil(n_train / batch)
    return per_epoch, cfg.train.steps or cfg.train.epochs * per_epoch


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge nested dicts; values in `override` win."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# Preset sections that are not part of the experiment (see landscape.pipeline.plan): read there.
PLAN_SECTIONS = {"description", "analyze", "claims", "sweep"}


def from_dict(d: dict[str, Any]) -> ExperimentConfig:
    """Build and validate an `ExperimentConfig` from a nested dict (unknown keys raise)."""
    unknown = set(d) - set(SECTIONS) - PLAN_SECTIONS
    if unknown:
        raise ConfigError(
            f"unknown config section(s) {sorted(unknown)}; known sections: " + ", ".join(SECTIONS)
        )
    sections = {}
    for name in SECTIONS:
        values = d.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{name}] must be a table, found {values!r}")
        sections[name] = _build_section(name, values)
    cfg = ExperimentConfig(**sections)
    _check_combinations(cfg)
    return cfg


def parse_assignment(text: str) -> dict[str, Any]:
    """Parse `section.key=value` (value in TOML syntax, bare words as strings) to a nested dict.

    >>> parse_assignment("optim.lr=0.01")
    {'optim': {'lr': 0.01}}
    """
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(
            f"override {text!r}: expected section.key=value, e.g. optim.lr=0.01; "
            "known keys: " + ", ".join(known_keys())
        )
    key, raw = (s.strip() for s in text.split("=", 1))
    section, name = key.split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as `adam` is a string
    return {section: {name: value}}


def load_toml(path: Path) -> dict[str, Any]:
    """Read a config file; a missing or malformed file raises ConfigError naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found; check the path given to -c") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path}: is a folder; give -c a .toml file") from None
    except PermissionError:
        raise ConfigError(f"config file {path}: not readable (permission denied)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"config file {path}: not UTF-8 text (byte {e.start} is "
            f"{e.object[e.start : e.start + 1]!r}); TOML files are UTF-8; save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot be read ({e.strerror})") from None


def preset_names() -> list[str]:
    """Names of the presets shipped with the package."""
    files = resources.files("landscape.presets").iterdir()
    return sorted(f.name[: -len(".toml")] for f in files if f.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, Any]:
    """The raw dict of preset `name`; unknown names raise with the list of presets."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; available: " + ", ".join(preset_names()))
    text = resources.files("landscape.presets").joinpath(f"{name}.toml").read_text()
    return tomllib.loads(text)


def preset_descriptions() -> dict[str, str]:
    """Preset name -> its one-line description."""
    return {n: load_preset(n).get("description", "") for n in preset_names()}


def resolve_config(
    *,
    preset: str | None = "quick",
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Merge preset < config file < overrides and validate the result."""
    layers: dict[str, Any] = load_preset(preset) if preset else {}
    if config_file is not None:
        layers = merge(layers, load_toml(config_file))
    layers = merge(layers, overrides or {})
    return from_dict(layers)


def config_from_json(text: str) -> ExperimentConfig:
    """Rebuild a config stored in a store's attributes."""
    return from_dict(json.loads(text))
