"""Checks a tool call's arguments against the tool's JSON schema, inside the workflow.

Models invent arguments; a call that does not fit its schema is answered with the reasons (the
model can correct itself) and never reaches a tool. Only the subset of JSON Schema our tool specs
use is supported: object, properties, required, additionalProperties, type, enum, minimum,
maximum, minLength, maxLength, pattern, items. Pure and deterministic, so it can run in the workflow.

A string the model wrote that was too long for history arrives as a payload marker
(``models/payloads.py``): its lengths are the real content's, as the marker states them, and a
pattern (which only a short argument such as a path carries) cannot be checked on it.
"""

from __future__ import annotations

import re
from typing import Any

from models.payloads import PayloadRef

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def argument_errors(schema: dict[str, Any], arguments: Any, where: str = "arguments") -> list[str]:
    expected = schema.get("type")
    if expected and not _is_type(arguments, expected):
        return [f"{where} must be {expected}, got {type(arguments).__name__}"]
    if "enum" in schema and arguments not in schema["enum"]:
        return [f"{where} must be one of {schema['enum']}"]
    errors: list[str] = []
    if isinstance(arguments, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in arguments:
                errors.append(f"{where}.{name} is required")
        for name, value in arguments.items():
            if name in properties:
                errors += argument_errors(properties[name], value, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}.{name} is not a known argument (known: {', '.join(properties) or 'none'})")
    elif isinstance(arguments, list) and "items" in schema:
        for index, item in enumerate(arguments):
            errors += argument_errors(schema["items"], item, f"{where}[{index}]")
    elif isinstance(arguments, str):
        errors += _string_errors(schema, arguments, where)
    elif isinstance(arguments, (int, float)) and not isinstance(arguments, bool):
        if "minimum" in schema and arguments < schema["minimum"]:
            errors.append(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and arguments > schema["maximum"]:
            errors.append(f"{where} must be <= {schema['maximum']}")
    return errors


def _string_errors(schema: dict[str, Any], value: str, where: str) -> list[str]:
    ref = PayloadRef.parse(value)
    length = ref.chars if ref else len(value)
    errors = []
    if length < schema.get("minLength", 0):
        errors.append(f"{where} must not be shorter than {schema['minLength']} characters")
    if "maxLength" in schema and length > schema["maxLength"]:
        errors.append(f"{where} must not be longer than {schema['maxLength']} characters (it has {length})")
    pattern = schema.get("pattern")
    if pattern and (ref is not None or re.search(pattern, value) is None):
        hint = f": {schema['description']}" if schema.get("description") else ""
        errors.append(f"{where} {value[:80]!r} does not match the pattern {pattern!r}{hint}")
    return errors


def _is_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if name in ("integer", "number") and isinstance(value, bool):
            continue
        if isinstance(value, _TYPES.get(name, ())):
            return True
    return False
