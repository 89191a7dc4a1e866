"""Composition of the configuration: the foundation's sections plus those the domain packages own."""
from __future__ import annotations

import os

from callqueue.hours import check_hours
from core.config import Config, load_config
from ivr.tree import SECTIONS as IVR_SECTIONS
from ivr.tree import check_tree


def full_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the whole configuration file (shipped defaults merged with `path`)."""
    return load_config(path, extra_sections=IVR_SECTIONS, extra_checks=(check_tree, check_hours))
