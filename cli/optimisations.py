"""``daemonflow optimisations list|revert|review``: the hints the optimisation review applied.

``list`` and ``revert`` work on the store directly (no worker needed); a revert takes the hint out
of force at once for conversations that open from then on. ``review`` runs
``OptimisationReviewWorkflow`` now with the schedule's input and waits (it needs a worker).
"""

from __future__ import annotations

import argparse
import getpass
import json

from cli.common import CliError
from cli.run_now import run_now
from config.settings import Settings
from models.optimisation import AgentHintView, OptimisationReviewResult
from store.agent_hints import AgentHintStore, HintAlreadyReverted, HintNotFound
from store.engine import make_engine
from workers.schedules import OPTIMISATION_REVIEW, optimisation_review_input
from workflows.optimisation_review import OptimisationReviewWorkflow


def format_hint(hint: AgentHintView) -> str:
    state = (
        f"in force until {hint.expires_at:%Y-%m-%d %H:%M} UTC"
        if hint.active
        else f"reverted {hint.reverted_at:%Y-%m-%d %H:%M} UTC by {hint.reverted_by}"
        + (f" ({hint.revert_reason})" if hint.revert_reason else "")
    )
    lines = [
        f"#{hint.id} {hint.agent}: {hint.kind.value} = {hint.value} (was {hint.previous}), applied "
        f"{hint.applied_at:%Y-%m-%d %H:%M} UTC by {hint.applied_by}; {state}",
        f"    why: {hint.reason}",
        *(f"    - {line}" for line in hint.evidence),
    ]
    if hint.active:
        lines.append(f"    revert: {hint.revert}")
    return "\n".join(lines)


async def optimisations(args: argparse.Namespace, settings: Settings) -> int:
    if args.optimisations_command == "review":
        result: OptimisationReviewResult = await run_now(
            settings, OptimisationReviewWorkflow.run, optimisation_review_input(settings), OPTIMISATION_REVIEW,
            "optimisation review",
        )  # fmt: skip
        if args.json:
            print(result.model_dump_json(indent=2))
            return 0
        print(f"optimisation review: applied {len(result.applied)}, expired {len(result.expired)}")
        print("\n".join([*(f"  applied {line}" for line in result.applied), *(f"  no hint: {line}" for line in result.skipped)]))
        return 0
    store = AgentHintStore(make_engine(settings.effective_database_url))
    if args.optimisations_command == "revert":
        try:
            hint = store.revert(args.id, by=f"cli:{getpass.getuser()}", reason=args.reason)
        except HintNotFound as err:
            raise CliError(f"{err} (`daemonflow optimisations list --all` lists them)") from err
        except HintAlreadyReverted as err:
            raise CliError(str(err)) from err
        print(f"reverted #{hint.id}: {hint.agent}'s {hint.kind.value} is {hint.previous} again for conversations opened from now")
        return 0
    hints = store.list(active_only=not args.all, agent=args.agent, limit=args.limit)
    if args.json:
        print(json.dumps([hint.model_dump(mode="json") for hint in hints], indent=2))
    else:
        print("\n".join(format_hint(hint) for hint in hints) or ("no optimisation ever applied" if args.all else
              "no optimisation hint in force (`--all` for the journal)"))  # fmt: skip
    return 0
