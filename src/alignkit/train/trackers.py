"""Experiment trackers (``train.trackers``) through accelerate's tracking API.

The engine creates its ``Accelerator`` with ``log_with`` set to the trackers
and ``project_dir`` set to ``RUN/tensorboard``, starts them with the run
directory's name (TensorBoard writes to ``RUN/tensorboard/NAME/``), and sends
every metrics row's numbers to them with the row's step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from alignkit.errors import ConfigError

TRACKER_DIR = "tensorboard"
"""The run directory's subdirectory trackers that write files write to."""

PACKAGES = {"tensorboard": "tensorboard"}
"""The package each tracker needs."""


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def check_trackers(trackers: Sequence[str]) -> None:
    """Refuse trackers whose package is not installed, saying how to install it.

    Raises:
        ConfigError: e.g. ``train.trackers`` asks for tensorboard without it installed.
    """
    for name in trackers:
        package = PACKAGES[name]
        if not installed(package):
            raise ConfigError(f"train.trackers: {name} needs the '{package}' package, which is "
                              f"not installed; install it with `pip install {package}`, or "
                              "remove it from train.trackers")


def scalars(values: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row (booleans, text, lists and None left out)."""
    return {key: float(value) for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}
