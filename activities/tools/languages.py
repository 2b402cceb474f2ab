"""The language a file's name suggests, for ``generate_code`` (the prompt and the report)."""

from __future__ import annotations

import posixpath

LANGUAGES = {
    ".py": "Python", ".js": "JavaScript", ".ts": "TypeScript", ".go": "Go", ".rs": "Rust", ".java": "Java",
    ".sh": "POSIX shell", ".sql": "SQL", ".md": "Markdown", ".html": "HTML", ".css": "CSS", ".yaml": "YAML",
    ".yml": "YAML", ".json": "JSON", ".toml": "TOML", ".c": "C", ".cpp": "C++", ".rb": "Ruby",
}


def language_of(path: str, given: str | None = None) -> str:
    """``given`` when the call named one, else what the extension says."""
    return given or LANGUAGES.get(posixpath.splitext(path)[1].lower(), "the language the file name suggests")
