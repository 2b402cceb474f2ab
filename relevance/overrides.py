"""A channel's partial configuration merged onto the defaults, checked as a whole.

Merging is a deep merge of the fields the override sets (``null`` keeps the default), then the
merged result is validated as a full :class:`RelevanceConfig`: a channel can never hold a
configuration the file itself could not (weights summing to 1.2, thresholds out of order).
Errors name their source and every problem, in one line each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from models.relevance import RelevanceConfig, RelevanceOverrides


class RelevanceConfigError(ValueError):
    """A relevance configuration (file or override) is invalid; the message names its source."""


def describe(error: ValidationError) -> str:
    """pydantic's errors as ``where: what`` phrases joined by ``; ``."""
    phrases = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        phrases.append(f"{where}: {message}" if where else message)
    return "; ".join(phrases)


def validated(data: Any, source: str) -> RelevanceConfig:
    """A full configuration from parsed data, or :class:`RelevanceConfigError` naming ``source``."""
    if not isinstance(data, Mapping):
        raise RelevanceConfigError(f"{source}: expected a mapping of relevance settings, got {type(data).__name__}")
    try:
        return RelevanceConfig.model_validate(data)
    except ValidationError as err:
        raise RelevanceConfigError(f"{source}: {describe(err)}") from None


def parse_overrides(data: Any, source: str) -> RelevanceOverrides:
    """A :class:`RelevanceOverrides` from parsed data (unknown fields refused)."""
    try:
        return RelevanceOverrides.model_validate(data or {})
    except ValidationError as err:
        raise RelevanceConfigError(f"{source}: {describe(err)}") from None


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(
    base: RelevanceConfig, overrides: RelevanceOverrides | Mapping[str, Any] | None, source: str
) -> RelevanceConfig:
    """``base`` with ``overrides`` merged in, validated whole; ``overrides`` may be a
    :class:`RelevanceOverrides` or its JSON form."""
    if overrides is None:
        return base
    if not isinstance(overrides, RelevanceOverrides):
        overrides = parse_overrides(overrides, source)
    changes = overrides.model_dump(exclude_unset=True)
    return validated(_merge(base.model_dump(), changes), source)
