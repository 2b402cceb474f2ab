"""Loads agent templates from ``config/agents/*.yaml`` (and an optional extra directory).

A template name is looked up by file stem. Unknown names raise ``UnknownAgentError`` listing the
known ones, so a typo is a clear error at the start of a conversation, never a stuck workflow.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from models.agent import AgentTemplate

BUILTIN_DIR = Path(__file__).parent / "agents"


class UnknownAgentError(LookupError):
    pass


class InvalidAgentError(ValueError):
    pass


def _directories(extra_dir: Path | None) -> list[Path]:
    return [d for d in (extra_dir, BUILTIN_DIR) if d is not None and d.is_dir()]


def template_names(extra_dir: Path | None = None) -> list[str]:
    return sorted({p.stem for d in _directories(extra_dir) for p in d.glob("*.yaml")})


def load_template(name: str, extra_dir: Path | None = None) -> AgentTemplate:
    """The template called ``name``; a file in ``extra_dir`` shadows the built-in one."""
    for directory in _directories(extra_dir):
        path = directory / f"{name}.yaml"
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                return AgentTemplate.model_validate({"name": name, **data})
            except (yaml.YAMLError, ValidationError) as err:
                raise InvalidAgentError(f"agent template {path} is invalid: {err}") from err
    known = ", ".join(template_names(extra_dir)) or "none"
    raise UnknownAgentError(f"unknown agent template {name!r}; known templates: {known}")


def load_all(extra_dir: Path | None = None) -> list[AgentTemplate]:
    return [load_template(n, extra_dir) for n in template_names(extra_dir)]
