"""Shared fixtures: one real Temporal dev server per session, real stores, the fake Ollama server."""

pytest_plugins = [
    "tests.fixtures.databases",
    "tests.fixtures.ollama",
    "tests.fixtures.openai_compatible",
    "tests.fixtures.temporal",
    "tests.fixtures.docker",
    "tests.fixtures.api",
]
