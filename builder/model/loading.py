"""Read YAML files into pydantic models, with errors that name file, key and expectation."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from builder.model.errors import FactoryError

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FactoryError(f"{path}: can't be read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise FactoryError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FactoryError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:  # a key holding control characters is shown escaped, so the error stays one line
            parts.append(("." if parts else "") + (item if item.isprintable() else repr(item)))
    return "".join(parts) or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model that `loc` (an unknown key) sits in, for 'did you mean'."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(item)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", None) or (annotation,)
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            nested = [x for a in args for x in (getattr(a, "__args__", None) or ())]
            models = [a for a in nested if isinstance(a, type) and issubclass(a, BaseModel)]
        current = models[0] if models else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def describe_validation_error(path: Path, model: type[BaseModel], exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = _key_path(loc)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            close = difflib.get_close_matches(str(loc[-1]), _allowed_keys(model, loc), n=1)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")  # our validators' own words
        lines.append(f"{path}: {key}: {msg}")
    return "\n".join(lines)


def load_model(path: Path, model: type[Model], data: dict[str, Any] | None = None) -> Model:
    """Validate `data` (or the file's content) as `model`; raise FactoryError on any fault."""
    raw = read_yaml(path) if data is None else data
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise FactoryError(describe_validation_error(path, model, exc)) from None
