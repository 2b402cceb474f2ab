"""Loads the relevance engine's configuration (``config/relevance.yaml``) and channel overrides.

This is the only module of the engine that reads files; the merge and every check are pure
(``relevance.overrides``) so that a channel workflow can apply its overrides itself, and a bad
file or override is refused with its source named: ``config/relevance.yaml: weights: weights sum
to 1.05 (…); they must sum to 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from models.relevance import RelevanceConfig
from relevance.overrides import RelevanceConfigError, apply_overrides, validated

DEFAULT_RELEVANCE_PATH = Path(__file__).with_name("relevance.yaml")

__all__ = ["DEFAULT_RELEVANCE_PATH", "RelevanceConfigError", "load_relevance", "relevance_for_channel"]


def load_relevance(path: Path | str | None = None) -> RelevanceConfig:
    """The configuration at ``path`` (default ``config/relevance.yaml``), checked whole."""
    source = Path(path) if path is not None else DEFAULT_RELEVANCE_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise RelevanceConfigError(f"cannot read relevance configuration {source}: {err}") from err
    except yaml.YAMLError as err:
        raise RelevanceConfigError(f"relevance configuration {source} is not valid YAML: {err}") from err
    return validated(data, str(source))


def relevance_for_channel(channel_id: str, overrides: Any, path: Path | str | None = None) -> RelevanceConfig:
    """The defaults with a channel's overrides merged in; errors name the channel."""
    return apply_overrides(load_relevance(path), overrides, f"relevance overrides of channel {channel_id}")
