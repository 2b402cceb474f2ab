"""``daemonflow sandbox build``: the sandbox image, from the Dockerfile or offline with debootstrap."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from cli.common import CliError
from config.settings import Settings

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "deploy" / "sandbox"


def build(args: argparse.Namespace, settings: Settings) -> int:
    if not SANDBOX_DIR.is_dir():
        raise CliError(f"{SANDBOX_DIR} is missing: run this from a checkout of Daemonflow")
    if args.offline:
        command = ["bash", str(SANDBOX_DIR / "build-offline.sh"), settings.sandbox_image, *(["--force"] if args.force else [])]
    else:
        command = ["docker", "build", "-t", settings.sandbox_image, str(SANDBOX_DIR)]
    print("+", " ".join(command), flush=True)
    try:
        return subprocess.call(command)
    except FileNotFoundError as err:
        raise CliError(f"cannot run {command[0]}: {err}") from err
