"""Load, resolve and validate the YAML configuration, reporting every problem at once.

Steps: parse YAML while remembering each key's line; resolve ``${...}`` references;
validate the top level with :class:`AppConfig` and each connection block with its
plugin's model; check cross-references (stage maps, rules) and refuse plaintext secrets.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from connectors.core.config import ConnectionConfig
from connectors.core.registry import available_plugins
from connectors.core.secrets import PLAINTEXT, SecretValue
from connectors.core.suggest import did_you_mean
from mapping.validation import mapping_problems
from stagelink.settings.errors import ConfigError, ConfigProblem
from stagelink.settings.models import AppConfig
from stagelink.settings.references import PathKey, resolve_references

CONFIG_ENV_VAR = "STAGELINK_CONFIG"
DEFAULT_CONFIG_FILE = Path("stagelink.yaml")


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$STAGELINK_CONFIG`` or ``./stagelink.yaml``."""
    return Path(environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)


def load_config(path: Path, *, environ: Mapping[str, str] = os.environ) -> AppConfig:
    """Read ``path`` and return the validated configuration, or raise :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem("", f"file not found (set --config or ${CONFIG_ENV_VAR})")], path
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem("", f"cannot read the file: {exc}")], path) from None
    return parse_config(text, source=path, environ=environ)


def parse_config(
    text: str, *, source: Path | None = None, environ: Mapping[str, str] = os.environ
) -> AppConfig:
    """Validate configuration ``text``; relative paths are relative to ``source``'s folder."""
    base_dir = (source.parent if source else Path.cwd()).resolve()
    lines, raw, yaml_problems = _parse_yaml(text)
    if raw is None:
        raise ConfigError(yaml_problems, source)
    if not isinstance(raw, dict):
        found = type(raw).__name__
        raise ConfigError(
            [ConfigProblem("", f"expected a mapping at the top, found {found}")], source
        )

    reference_problems: list[tuple[PathKey, str]] = []
    data = resolve_references(raw, environ=environ, base_dir=base_dir, problems=reference_problems)
    unresolved = {_dotted(p) for p, _ in reference_problems}

    problems: list[ConfigProblem] = []
    context = {"base_dir": base_dir}
    connections = _validate_connections(data.get("connections"), context, lines, problems)
    top_level = {k: v for k, v in data.items() if k != "connections"}
    if isinstance(top_level.get("database_url"), str):
        top_level["database_url"] = _anchor_sqlite_path(top_level["database_url"], base_dir)
    config: AppConfig | None = None
    try:
        config = AppConfig.model_validate({**top_level, "connections": []}, context=context)
    except ValidationError as exc:
        problems += _from_validation_error(exc, (), data, AppConfig, lines)

    if config is not None:
        config = config.model_copy(update={"connections": connections})
        problems += _cross_check(config, lines)
        problems += _mapping_problems(config, lines)
        problems += _nudge_problems(config, lines)
        problems += _plaintext_secrets(config, lines)
    # A failed reference also fails validation at the same key: report only the reference.
    every = [
        *yaml_problems,
        *(ConfigProblem(_dotted(p), msg, _line(lines, p)) for p, msg in reference_problems),
        *(p for p in problems if p.path not in unresolved),
    ]
    if every or config is None:
        unique = dict.fromkeys(every)
        raise ConfigError(
            sorted(unique, key=lambda p: (str(p.file or ""), p.line or 0, p.path)), source
        )
    return config


# --- YAML with line numbers -------------------------------------------------------------


def _parse_yaml(text: str) -> tuple[dict[PathKey, int], Any, list[ConfigProblem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return {}, None, [ConfigProblem("", f"invalid YAML: {reason}", line)]
    if node is None:
        return {}, None, [ConfigProblem("", "the file is empty")]
    lines: dict[PathKey, int] = {}
    problems: list[ConfigProblem] = []
    _index(node, (), lines, problems)
    return lines, data, problems


def _index(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], problems: list[ConfigProblem]
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                problems.append(
                    ConfigProblem(
                        _dotted(child),
                        "duplicate key (YAML keeps only the last one)",
                        key_node.start_mark.line + 1,
                    )
                )
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), lines, problems)


def _line(lines: Mapping[PathKey, int], path: PathKey) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- validation -------------------------------------------------------------------------


def _validate_connections(
    raw: Any,
    context: dict[str, Any],
    lines: Mapping[PathKey, int],
    problems: list[ConfigProblem],
) -> list[ConnectionConfig]:
    if raw is None:
        return []
    path: PathKey = ("connections",)
    if not isinstance(raw, list):
        problems.append(
            ConfigProblem("connections", "expected a list of connections", _line(lines, path))
        )
        return []
    plugins = available_plugins()
    validated: list[ConnectionConfig] = []
    for index, block in enumerate(raw):
        where: PathKey = (*path, index)
        if not isinstance(block, dict):
            problems.append(
                ConfigProblem(_dotted(where), "expected a mapping", _line(lines, where))
            )
            continue
        kind = block.get("kind")
        if kind not in plugins:
            known = ", ".join(sorted(plugins))
            found = "nothing" if kind is None else repr(kind)
            hint = did_you_mean(str(kind), plugins) if isinstance(kind, str) else ""
            problems.append(
                ConfigProblem(
                    _dotted((*where, "kind")),
                    f"expected one of the installed connector kinds ({known}), found {found}{hint}",
                    _line(lines, (*where, "kind")),
                )
            )
            continue
        model = plugins[kind].config_model
        try:
            validated.append(model.model_validate(block, context=context))
        except ValidationError as exc:
            problems += _from_validation_error(exc, where, block, model, lines)
    return validated


def _from_validation_error(
    exc: ValidationError,
    prefix: PathKey,
    data: Any,
    model: type[BaseModel],
    lines: Mapping[PathKey, int],
) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        path, allowed = _data_path(error["loc"], data, model)
        full = (*prefix, *path)
        message = _message(error, allowed)
        problems.append(ConfigProblem(_dotted(full), message, _line(lines, full)))
    return problems


def _message(error: Mapping[str, Any], allowed: list[str]) -> str:
    kind = error["type"]
    found = error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        hint = did_you_mean(key, allowed)
        expected = f" (allowed: {', '.join(allowed)})" if allowed and not hint else ""
        return f"unknown key{hint}{expected}"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if (
        kind in {"union_tag_invalid", "literal_error"}
        or kind.endswith("_type")
        or "parsing" in kind
    ):
        return f"{message}; found {_describe(found)}"
    return message


def _describe(value: Any) -> str:
    if isinstance(value, SecretValue):
        return "a secret"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _data_path(loc: tuple[Any, ...], data: Any, model: Any) -> tuple[PathKey, list[str]]:
    """Turn a pydantic ``loc`` into a path through the YAML data, and the keys allowed there.

    Pydantic inserts union tags and validator names into ``loc`` ("password",
    "function-after[...]"); walking the data alongside drops them.
    """
    path: list[str | int] = []
    current: Any = data
    current_type: Any = model
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if _is_tag(current_type, current, part):
            current_type = _pick_model(current_type, current)
            continue
        if isinstance(current, dict) and (part in current or last):
            current_type = _field_type(current_type, str(part), current)
            path.append(part)
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current_type = _item_type(current_type)
            path.append(part)
            current = current[part]
    allowed = _model_fields(_walk_type(model, data, path[:-1]), _walk(data, path[:-1]))
    return tuple(path), allowed


def _walk(data: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _walk_type(model: Any, data: Any, path: list[str | int]) -> Any:
    current = model
    for part in path:
        if isinstance(part, int):
            current = _item_type(current)
        else:
            current = _field_type(current, part, data if isinstance(data, dict) else {})
        data = _walk(data, [part])
    return current


def _candidates(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _candidates(arg)]
    return [annotation]


def _is_tag(annotation: Any, data: Any, part: Any) -> bool:
    """Whether ``part`` is the discriminator value pydantic put in ``loc`` for a union."""
    models = [
        c for c in _candidates(annotation) if isinstance(c, type) and issubclass(c, BaseModel)
    ]
    return len(models) > 1 and isinstance(data, dict) and data.get("method") == part


def _pick_model(annotation: Any, data: Any) -> Any:
    models = [
        c for c in _candidates(annotation) if isinstance(c, type) and issubclass(c, BaseModel)
    ]
    if len(models) > 1 and isinstance(data, dict):
        for candidate in models:
            method = candidate.model_fields.get("method")
            if method is not None and data.get("method") in typing.get_args(method.annotation):
                return candidate
    return models[0] if models else annotation


def _field_type(model: Any, name: str, data: Mapping[str, Any]) -> Any:
    model = _pick_model(model, data)
    if isinstance(model, type) and issubclass(model, BaseModel) and name in model.model_fields:
        return model.model_fields[name].annotation
    return None


def _item_type(annotation: Any) -> Any:
    for candidate in _candidates(annotation):
        args = typing.get_args(candidate)
        if typing.get_origin(candidate) in (list, tuple) and args:
            return args[0]
    return None


def _model_fields(annotation: Any, data: Any) -> list[str]:
    model = _pick_model(annotation, data)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


# --- checks across the whole file ------------------------------------------------------


def _nudge_problems(config: AppConfig, lines: Mapping[PathKey, int]) -> list[ConfigProblem]:
    # Imported here: the nudges service pulls in the recommender, which imports settings.
    from stagelink.nudges.service import configuration_problems

    found = []
    for dotted, message in configuration_problems(config):
        path: PathKey = tuple(
            int(part) if part.isdigit() else part
            for part in dotted.replace("[", ".").replace("]", "").split(".")
        )
        found.append(ConfigProblem(dotted, message, _line(lines, path)))
    return found


def _cross_check(config: AppConfig, lines: Mapping[PathKey, int]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    stages = set(config.canonical_stages)
    if len(stages) != len(config.canonical_stages):
        path: PathKey = ("canonical_stages",)
        problems.append(
            ConfigProblem("canonical_stages", "stages must be unique", _line(lines, path))
        )
    seen: dict[str, int] = {}
    for index, connection in enumerate(config.connections):
        where: PathKey = ("connections", index)
        if connection.name in seen:
            problems.append(
                ConfigProblem(
                    _dotted((*where, "name")),
                    f"duplicate connection name {connection.name!r} "
                    f"(also connections[{seen[connection.name]}])",
                    _line(lines, (*where, "name")),
                )
            )
        seen.setdefault(connection.name, index)
        for crm_stage, canonical in connection.stage_map.items():
            if canonical not in stages:
                key = (*where, "stage_map", crm_stage)
                problems.append(
                    ConfigProblem(
                        _dotted(key),
                        f"maps to {canonical!r}, which is not a canonical stage"
                        f"{did_you_mean(canonical, stages)} (canonical_stages: "
                        f"{', '.join(config.canonical_stages)})",
                        _line(lines, key),
                    )
                )
    rule_ids: dict[str, int] = {}
    for index, rule in enumerate(config.rules):
        where = ("rules", index)
        if rule.id in rule_ids:
            problems.append(
                ConfigProblem(
                    _dotted((*where, "id")),
                    f"duplicate rule id {rule.id!r} (also rules[{rule_ids[rule.id]}])",
                    _line(lines, (*where, "id")),
                )
            )
        rule_ids.setdefault(rule.id, index)
        for stage_index, stage in enumerate(rule.when.stages):
            if stage not in stages:
                key = (*where, "when", "stages", stage_index)
                problems.append(
                    ConfigProblem(
                        _dotted(key),
                        f"{stage!r} is not a canonical stage{did_you_mean(stage, stages)}",
                        _line(lines, key),
                    )
                )
    return problems


def _mapping_problems(config: AppConfig, lines: Mapping[PathKey, int]) -> list[ConfigProblem]:
    """Catalog files and rules checked against each other (errors only; stage names above)."""
    _, found = mapping_problems(config, check_stage_names=False)
    return [
        ConfigProblem(p.where, p.message, p.line, file=p.file)
        if p.file is not None
        else ConfigProblem(_dotted(p.path), p.message, _line(lines, p.path))
        for p in found
        if p.severity == "error"
    ]


def _plaintext_secrets(config: AppConfig, lines: Mapping[PathKey, int]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for path, secret in _secrets(config, ()):
        if secret.source != PLAINTEXT:
            continue
        allowed = (
            len(path) > 1
            and path[0] == "connections"
            and isinstance(path[1], int)
            and config.connections[path[1]].allow_plaintext_secrets
        )
        if not allowed:
            problems.append(
                ConfigProblem(
                    _dotted(path),
                    "secret written in plain text; use ${ENV_VAR} or ${file:/path} "
                    "(allow_plaintext_secrets: true is only for sandbox connections)",
                    _line(lines, path),
                )
            )
    return problems


def _secrets(value: Any, path: PathKey) -> typing.Iterator[tuple[PathKey, SecretValue]]:
    if isinstance(value, SecretValue):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secrets(getattr(value, name), (*path, name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _secrets(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets(item, (*path, str(key)))


def _anchor_sqlite_path(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        relative = url.removeprefix(prefix)
        if relative and relative != ":memory:" and not relative.startswith(":"):
            return prefix + str(base_dir / relative)
    return url
