"""The JSON schema of a grid config (workflow/grids/*.yaml, expanded by mbasr/study/grid.py) and its check:
an unknown key or a value of the wrong type fails before any work, naming the file and the line that set
it, as presets do (mbasr/config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REQUIRED = ("preset", "scale", "work_dir", "seeds", "source_domain", "targets", "tau", "p")
_SHARE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "an audio share in (0, 1]"}
_TAU = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "description": "a share in (0, 1)"}
_NAME = {"type": "string", "minLength": 1}
_COUNT = {"type": "integer", "minimum": 0, "description": "0: the preset's"}


def _section(**props) -> dict[str, Any]:
    """An optional section (null or absent: none) with exactly these keys."""
    return {
        "type": ["object", "null"],
        "additionalProperties": False,
        "required": list(props),
        "properties": props,
    }


GRID_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": list(REQUIRED),
    "properties": {
        "preset": _NAME,
        "scale": {"enum": ["micro", "default", "large"]},
        "work_dir": _NAME,
        "seeds": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        "source_domain": _NAME,
        "targets": {"type": "array", "minItems": 1, "items": _NAME},
        "tau": _TAU,
        "p": {
            "type": "array",
            "minItems": 1,
            "items": _SHARE | {"description": "an audio share in (0, 1]; p = 0 is the base / text-only run"},
        },
        "text_only": {"type": "boolean"},
        "tau_t_sweep": _section(target=_NAME, values={"type": "array", "items": _TAU}),
        "forgetting": _section(target=_NAME, p=_SHARE),
        "modality_gap": _section(target=_NAME, p=_SHARE),
        "steps": _COUNT,
        "lr": {"type": "number", "minimum": 0, "description": "0: the preset's, or the dev-set search's"},
        "base_steps": _COUNT,
        "stage2_lr_file": {"type": ["string", "null"]},
        "threads_per_job": {"type": "integer", "minimum": 1},
        "threads_per_run": {"type": "integer", "minimum": 1},
        "publish_to": _NAME,
        # the learning-rate search's section (workflow/grids/search.yaml), checked further by mbasr.study.search
        "search": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {"type": ["array", "number"]} for k in ("lrs", "p")}
            | {k: {"type": "array", "items": _NAME} for k in ("strategies", "targets")},
        },
    },
}


class GridError(ValueError):
    """A grid config that cannot be expanded; the message names the file, the line and the key."""


def _at(data: Any, path: tuple) -> tuple[bool, Any]:
    for k in path:
        if isinstance(data, dict) and k in data:
            data = data[k]
        elif isinstance(data, list) and isinstance(k, int) and k < len(data):
            data = data[k]
        else:
            return False, None
    return True, data


def _where(path: tuple, config: dict[str, Any], sources) -> str:
    """`file:line` of the config file whose value at `path` is the merged config's (None: from none of
    them, e.g. Snakemake's --config)."""
    from mbasr.config import key_lines

    _, value = _at(config, path)
    for src in sources:
        text = Path(src).read_text(encoding="utf-8")
        found, there = _at(yaml.safe_load(text) or {}, path)
        if found and there == value:
            lines, keys = key_lines(text), tuple(str(k) for k in path)
            while keys and keys not in lines:
                keys = keys[:-1]
            return f"{src}:{lines[keys]}" if keys else str(src)
    return "grid config" + (" (--config)" if sources else "")


def check_grid(config: Any, sources: list[str | Path] | tuple = ()) -> None:
    """Fail on the first way `config` breaks `GRID_SCHEMA` (in key order), naming the file and the line
    of the config file (among `sources`, the files it was merged from) that set the value, and the key."""
    import jsonschema

    if not isinstance(config, dict):
        raise GridError(f"grid config: must be a mapping of keys, got {type(config).__name__}")
    errors = list(jsonschema.Draft202012Validator(GRID_SCHEMA).iter_errors(config))
    if not errors:
        return
    e = min(errors, key=lambda e: [str(k) for k in e.absolute_path])
    path = tuple(e.absolute_path)
    msg = e.message
    if e.validator == "additionalProperties":
        known = list(e.schema["properties"])
        path += (next(k for k in e.instance if k not in known),)
        msg = f"unknown key (known: {', '.join(known)})"
    elif e.validator == "required":
        msg = f"{e.message} (see workflow/grids/default.yaml)"
    elif "description" in e.schema:
        msg += f" ({e.schema['description']})"
    key = ".".join(str(k) for k in path) or "<root>"
    raise GridError(f"{_where(path, config, sources)}: {key}: {msg}")
