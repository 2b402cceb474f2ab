"""Shared fixtures: one real Temporal dev server per session, real stores, the fake model servers,
and the real local model (llama-server) for the `real_model` group."""

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.ollama",
    "tests.fixtures.openai_compatible",
    "tests.fixtures.temporal",
    "tests.fixtures.docker",
    "tests.fixtures.api",
    "tests.fixtures.local_model",
]
