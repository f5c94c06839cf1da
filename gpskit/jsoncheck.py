"""Checking a JSON document against a JSON Schema file in ``schemas/json/`` (the subset of
draft 2020-12 gpskit's schemas use), without a dependency.

Every number must also be finite: Python's ``json`` reads ``NaN`` and ``Infinity``, which
no schema keyword here rules out and no consumer of a config can use.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gpskit import paths
from gpskit.config import schemas_dir

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def load_json_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (schemas_dir() / "json" / f"{name}.schema.json").read_text()
    )
    return schema


def problems(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """What in ``value`` breaks ``schema`` (empty: it conforms), each with its JSON path."""
    at = where or "(top)"
    found = _type_problems(value, schema, at)
    if found:
        return found
    if "const" in schema and value != schema["const"]:
        return [f"{at}: must be {schema['const']!r}, not {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: must be one of {schema['enum']}, not {value!r}"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_problems(float(value), schema, at)
    if isinstance(value, dict):
        return _object_problems(value, schema, where)
    if isinstance(value, list):
        return _array_problems(value, schema, where)
    return []


def _type_problems(value: Any, schema: dict[str, Any], at: str) -> list[str]:
    wanted = schema.get("type")
    if wanted is None:
        return []
    names = wanted if isinstance(wanted, list) else [wanted]
    for name in names:
        kinds = _TYPES[name]
        if isinstance(value, kinds) and not (
            isinstance(value, bool) and name in ("number", "integer")
        ):
            return []
    return [f"{at}: must be {' or '.join(names)}, not {type(value).__name__}"]


def _number_problems(value: float, schema: dict[str, Any], at: str) -> list[str]:
    if not math.isfinite(value):
        return [f"{at}: must be a finite number, not {value}"]
    if "minimum" in schema and value < schema["minimum"]:
        return [f"{at}: must be at least {schema['minimum']}, not {value:g}"]
    if "maximum" in schema and value > schema["maximum"]:
        return [f"{at}: must be at most {schema['maximum']}, not {value:g}"]
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return [f"{at}: must be above {schema['exclusiveMinimum']}, not {value:g}"]
    return []


def _object_problems(value: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    found = [
        f"{where or '(top)'}: {key!r} is missing"
        for key in schema.get("required", [])
        if key not in value
    ]
    properties = schema.get("properties", {})
    for key, item in value.items():
        if key in properties:
            found += problems(item, properties[key], f"{where}.{key}" if where else str(key))
        elif schema.get("additionalProperties") is False:
            found.append(f"{where or '(top)'}: unknown key {key!r}")
    return found


def _array_problems(value: list[Any], schema: dict[str, Any], where: str) -> list[str]:
    at = where or "(top)"
    if len(value) < schema.get("minItems", 0):
        return [f"{at}: needs at least {schema['minItems']} items, has {len(value)}"]
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return [f"{at}: at most {schema['maxItems']} items, has {len(value)}"]
    found: list[str] = []
    if "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{i}]")
            if len(found) > 5:
                break
    return found


def read_checked(path: Path, name: str, max_bytes: int = 64 << 20) -> dict[str, Any]:
    """``path`` parsed and checked against schema ``name``; ValueError saying what is wrong
    (unreadable JSON, nesting too deep to parse, or the first problems found)."""
    if path.stat().st_size > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MB")
    try:
        value = json.loads(paths.read_text(path))
    except RecursionError:
        raise ValueError("nested too deep to be a config") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    found = problems(value, load_json_schema(name))
    if found:
        raise ValueError("; ".join(found[:3]))
    checked: dict[str, Any] = value
    return checked
