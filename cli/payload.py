"""``daemonflow payload CONVERSATION DIGEST``: the whole content behind a payload marker.

A call waiting for approval may carry ``[daemonflow-payload sha256=…]`` instead of a long
argument (a file's 3 MB content); ``daemonflow status`` names the digest, and this prints the exact
content the approval's hash is bound to, or writes it to ``--out``. Reads the records store
directly (``DAEMONFLOW_DATABASE_URL``), like ``daemonflow memory``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.common import CliError
from config.settings import Settings
from models.conversation import WORKFLOW_ID_PREFIX
from store.engine import make_engine
from store.payloads import PayloadStore


def add_parser(sub: argparse._SubParsersAction) -> None:
    payload = sub.add_parser("payload", help="print a stored payload (a long tool-call argument or tool output)")
    payload.add_argument("conversation", metavar="CONVERSATION", help="conversation id or workflow id")
    payload.add_argument("digest", metavar="DIGEST", help="the sha256 shown by `daemonflow status` (sha256: optional)")
    payload.add_argument("--out", metavar="FILE", type=Path, help="write it to FILE instead of standard output")


def run(args: argparse.Namespace, settings: Settings) -> int:
    conversation_id = args.conversation.removeprefix(WORKFLOW_ID_PREFIX)
    digest = args.digest.removeprefix("sha256:")
    text = PayloadStore(make_engine(settings.effective_database_url)).get(conversation_id, digest)
    if text is None:
        raise CliError(f"conversation {conversation_id!r} has no stored payload sha256={digest} "
                       f"(store: {settings.effective_database_url})")
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {len(text.encode())} bytes (sha256={digest}) to {args.out}")
    else:
        sys.stdout.write(text)
    return 0
