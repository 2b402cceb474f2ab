"""The layout keeps its promises (docs/ARCHITECTURE.md §1): counted in the source, so a copy that
creeps back fails here rather than in a review.

- an activity's name is written once, in its ``@activity.defn``; workflows call it by reference;
- nothing in ``api/`` or ``cli/`` holds a workflow handle or names ``ConversationWorkflow`` or
  ``ChannelWorkflow``: the ``control`` client does;
- one visibility query builder (``control/visibility.py``) and one reading of a failure's causes
  (``workflows/failures.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("activities", "api", "bench", "cli", "config", "control", "models", "store", "workers", "workflows")


def sources(*packages: str) -> dict[Path, str]:
    return {path: path.read_text() for package in packages for path in sorted((ROOT / package).rglob("*.py"))}


def test_every_activity_name_is_written_once() -> None:
    code = sources(*PACKAGES)
    names = [name for text in code.values() for name in re.findall(r'@activity\.defn\(name="([^"]+)"\)', text)]
    assert len(names) >= 20 and len(set(names)) == len(names)
    for name in names:
        literal = re.compile(rf"""["']{re.escape(name)}["']""")
        places = [str(path.relative_to(ROOT)) for path, text in code.items() for _ in literal.finditer(text)]
        assert len(places) == 1, f"activity {name!r} is named in {places}; call it by reference instead"


def test_api_and_cli_reach_conversations_and_channels_only_through_control() -> None:
    for path, text in sources("api", "cli").items():
        for forbidden in ("get_workflow_handle", "WorkflowHandle", "ConversationWorkflow", "ChannelWorkflow",
                          "RelevanceCalculationWorkflow", "start_update", "execute_update"):
            assert forbidden not in text, f"{path.relative_to(ROOT)} uses {forbidden}; go through control/"


def test_one_visibility_query_builder_and_one_reading_of_failure_causes() -> None:
    for path, text in sources(*PACKAGES).items():
        where = str(path.relative_to(ROOT))
        if where != "control/visibility.py":
            assert "WorkflowType =" not in text and "ExecutionStatus =" not in text, f"{where} builds a visibility query"
        if where != "workflows/failures.py":
            assert not re.search(r"while .*\bcause\b", text), f"{where} unwraps failure causes itself"
