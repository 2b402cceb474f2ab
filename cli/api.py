"""``daemonflow api`` (the server itself is ``api/server.py``): serve the HTTP API and the admin page; ``--new-key NAME:ROLE`` mints a key.

Without ``DAEMONFLOW_API_KEYS`` it refuses to start (exit 2) and says how to set one: a server
that outlives a terminal must never run open. ``daemonflow dev`` is the one that generates a key.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from api.auth import ApiKeyError, NAME_PATTERN, Role, generate_key, hashed_entry
from cli.common import EXIT_USAGE, CliError
from config.settings import Settings
from workers.logs import configure_logging
from workers.telemetry import setup_tracing


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.new_key:
        return _new_key(args.new_key)
    updates = {k: v for k, v in (("api_host", args.host), ("api_port", args.port)) if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    configure_logging(settings)
    setup_tracing(settings, "daemonflow-api")  # before connecting: the client's interceptor uses it
    for noisy in ("temporalio", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(_serve(settings))
    except ApiKeyError as err:
        raise CliError(str(err), code=EXIT_USAGE) from err
    except ConnectionError as err:
        raise CliError(str(err)) from err
    except OSError as err:
        raise CliError(
            f"cannot listen on {settings.api_host}:{settings.api_port} ({err.strerror or err}); "
            "set DAEMONFLOW_API_PORT or --port"
        ) from err


async def _serve(settings: Settings) -> int:
    from api.server import load_keys, run_api
    from workers.client import connect

    keys = load_keys(settings)
    try:
        client = await connect(settings)
    except RuntimeError as err:
        raise ConnectionError(
            f"cannot reach Temporal at {settings.temporal_address} ({err}); start it (`daemonflow dev`) or set "
            "DAEMONFLOW_TEMPORAL_ADDRESS"
        ) from err
    return await run_api(settings, client, keys, say=lambda text: print(text, flush=True))


def _new_key(spec: str) -> int:
    name, _, role_text = spec.partition(":")
    if not NAME_PATTERN.match(name) or role_text not in {r.value for r in Role}:
        raise CliError(f"--new-key takes NAME:ROLE, role one of {', '.join(Role)}", code=EXIT_USAGE)
    key = generate_key()
    print(f"{name}:{role_text}:{key}")
    print(f"# the same entry without the secret (give the client the key above):\n{hashed_entry(name, Role(role_text), key)}")
    return 0
