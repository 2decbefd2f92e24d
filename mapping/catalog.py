"""The content catalog: YAML or CSV files (or folders of them), validated row by row.

YAML files hold ``items:`` (a list of mappings); CSV files have one item per row with a
header naming the columns, multi-valued cells separated by ``;``::

    id,title,url,type,stages,industries,segments,mobile_ready,owner,valid_from,expires_at
    roi-calculator,ROI calculator,https://...,calculator,solution;proposal,,enterprise,yes,...

Every bad row is reported with its file, line and field and left out of the catalog; the
rest loads. Items that are not yet valid or have expired load too: they are excluded when
recommending, with the reason (``Catalog.unavailable``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from connectors.core.config import StrictModel
from connectors.core.suggest import did_you_mean
from mapping.config import TAG_FACETS
from mapping.facts import norm
from mapping.problems import MappingProblem

CONTENT_TYPES = (
    "deck",
    "case_study",
    "battlecard",
    "one_pager",
    "video",
    "pricing",
    "demo",
    "calculator",
    "whitepaper",
    "datasheet",
    "playbook",
    "template",
    "webinar",
    "article",
    "faq",
    "other",
)
CATALOG_SUFFIXES = (".yaml", ".yml", ".csv")
LIST_SEPARATOR = ";"
_CONTENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_URL = re.compile(r"^https?://[^/\s?#]+\S*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One piece of content as loaded (immutable)."""

    id: str
    title: str
    url: str
    type: str
    stages: tuple[str, ...]
    #: Tag values per facet, as written in the catalog.
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mobile_ready: bool = True
    owner: str | None = None
    description: str = ""
    valid_from: datetime | None = None
    expires_at: datetime | None = None
    #: ``file:line`` it came from.
    source: str = ""

    def unavailable_reason(self, now: datetime) -> str | None:
        """Why the item must not be shown at ``now`` (not valid yet, expired), else None."""
        if self.expires_at is not None and now >= self.expires_at:
            return f"expired on {_when(self.expires_at)}"
        if self.valid_from is not None and now < self.valid_from:
            return f"not valid before {_when(self.valid_from)}"
        return None

    def tag_keys(self) -> Iterator[str]:
        """Every tag as ``value`` and ``facet:value`` in compare form."""
        for facet, values in self.tags.items():
            for value in values:
                yield norm(value)
                yield f"{facet}:{norm(value)}"


class Catalog:
    """The loaded items, by id, with the problems met while loading."""

    def __init__(
        self,
        items: Iterable[CatalogItem] = (),
        *,
        problems: Iterable[MappingProblem] = (),
        files: Iterable[Path] = (),
    ) -> None:
        self.items: tuple[CatalogItem, ...] = tuple(items)
        self.by_id: dict[str, CatalogItem] = {item.id: item for item in self.items}
        #: Id → position in ``items`` (catalog order).
        self.position: dict[str, int] = {item.id: i for i, item in enumerate(self.items)}
        self.problems: tuple[MappingProblem, ...] = tuple(problems)
        self.files: tuple[Path, ...] = tuple(files)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, content_id: str) -> CatalogItem | None:
        """The item with ``content_id``, if loaded."""
        return self.by_id.get(content_id)

    def tag_index(self) -> dict[str, list[str]]:
        """Tag key (``value`` or ``facet:value``, compare form) → ids of items carrying it."""
        index: dict[str, list[str]] = {}
        for item in self.items:
            for key in dict.fromkeys(item.tag_keys()):
                index.setdefault(key, []).append(item.id)
        return index

    def unavailable(self, now: datetime) -> list[tuple[CatalogItem, str]]:
        """Items excluded at ``now`` with the reason."""
        out = []
        for item in self.items:
            reason = item.unavailable_reason(now)
            if reason is not None:
                out.append((item, reason))
        return out


# --- one item -----------------------------------------------------------------------------


class ItemSpec(StrictModel):
    """The fields of one catalog item, as written in a file.

    Validation context: ``stages`` (canonical stages) and ``vocabulary`` (allowed tag
    values per facet, ``ContentSettings.tags``).
    """

    id: str
    title: Annotated[str, Field(min_length=1)]
    url: str
    type: str
    stages: Annotated[list[str], Field(min_length=1)]
    tags: dict[str, list[str]] = {}
    mobile_ready: bool = True
    owner: str | None = None
    description: str = ""
    valid_from: datetime | None = None
    expires_at: datetime | None = None

    @field_validator("id")
    @classmethod
    def _stable_id(cls, value: str) -> str:
        if not _CONTENT_ID.match(value):
            raise ValueError(
                "expected letters, digits, '.', '_' or '-' (at most 200, starting with a letter "
                f"or digit); found {value!r}"
            )
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _URL.match(value):
            raise ValueError(
                f"expected an http(s) URL such as https://example.com; found {value!r}"
            )
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        folded = norm(value)
        if folded not in CONTENT_TYPES:
            raise ValueError(
                f"unknown content type {value!r}{did_you_mean(folded, CONTENT_TYPES)} "
                f"(allowed: {', '.join(CONTENT_TYPES)})"
            )
        return folded

    @field_validator("stages")
    @classmethod
    def _canonical(cls, value: list[str], info: ValidationInfo) -> list[str]:
        stages: Sequence[str] = (info.context or {}).get("stages") or ()
        for stage in value:
            if stages and stage not in stages:
                raise ValueError(
                    f"{stage!r} is not a canonical stage{did_you_mean(stage, stages)} "
                    f"(canonical_stages: {', '.join(stages)})"
                )
        if len(set(value)) != len(value):
            raise ValueError("a stage is listed twice")
        return value

    @field_validator("valid_from", "expires_at", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime | date):
            return _instant(value)
        if isinstance(value, str):
            try:
                return _instant(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
            except ValueError:
                pass
        raise ValueError(
            f"expected a date such as 2026-01-31 or a time such as 2026-01-31T18:00:00Z; "
            f"found {value!r}"
        )

    @model_validator(mode="after")
    def _window(self) -> ItemSpec:
        start, end = self.valid_from, self.expires_at
        if start is not None and end is not None and start >= end:
            raise ValueError("valid_from must be before expires_at")
        return self

    def to_item(self, source: str) -> CatalogItem:
        """The immutable item."""
        return CatalogItem(
            id=self.id,
            title=self.title,
            url=self.url,
            type=self.type,
            stages=tuple(self.stages),
            tags={facet: tuple(values) for facet, values in self.tags.items() if values},
            mobile_ready=self.mobile_ready,
            owner=self.owner or None,
            description=self.description,
            valid_from=self.valid_from,
            expires_at=self.expires_at,
            source=source,
        )


def _instant(value: datetime | date | None) -> datetime | None:
    """A date means midnight UTC at its start; a naive time is taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def _when(moment: datetime) -> str:
    if moment.time() == time(0):
        return moment.date().isoformat()
    return moment.isoformat(timespec="minutes")


# --- files --------------------------------------------------------------------------------


@dataclass
class _Row:
    """One item's raw data and where it sits in its file."""

    data: Any
    line: int | None
    label: str  # items[3] or row 4
    field_lines: dict[str, int] = field(default_factory=dict)
    is_csv: bool = False


def catalog_files(paths: Iterable[Path]) -> tuple[list[Path], list[MappingProblem]]:
    """The catalog files under ``paths`` (folders are searched recursively, sorted)."""
    files: list[Path] = []
    problems: list[MappingProblem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in CATALOG_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(
                    MappingProblem(
                        "folder holds no catalog files (*.yaml, *.yml, *.csv)",
                        file=path,
                        severity="warning",
                    )
                )
            files += found
        elif path.is_file():
            if path.suffix.lower() not in CATALOG_SUFFIXES:
                problems.append(
                    MappingProblem("expected a .yaml, .yml or .csv catalog file", file=path)
                )
            else:
                files.append(path)
        else:
            problems.append(MappingProblem("does not exist", file=path))
    return files, problems


def load_catalog(
    paths: Iterable[Path],
    *,
    canonical_stages: Sequence[str] = (),
    vocabulary: Mapping[str, Sequence[str]] | None = None,
) -> Catalog:
    """Load and validate every item under ``paths``.

    Bad items and duplicate ids are left out and listed in ``Catalog.problems`` with file,
    line and field; a caller that must refuse a bad catalog checks that list.
    """
    files, problems = catalog_files(paths)
    context = {"stages": tuple(canonical_stages), "vocabulary": vocabulary or {}}
    items: list[CatalogItem] = []
    seen: dict[str, str] = {}
    for path in files:
        rows, file_problems = _read_rows(path)
        for row in rows:
            item, row_problems = _validate(path, row, context)
            file_problems += row_problems
            if item is None:
                continue
            if item.id in seen:
                file_problems.append(
                    MappingProblem(
                        f"duplicate content id {item.id!r} (also {seen[item.id]})",
                        file=path,
                        line=row.field_lines.get("id", row.line),
                        where=_where(row, "id"),
                    )
                )
                continue
            seen[item.id] = item.source
            items.append(item)
        problems += sorted(file_problems, key=lambda p: p.line or 0)
    return Catalog(items, problems=problems, files=files)


def _read_rows(path: Path) -> tuple[list[_Row], list[MappingProblem]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return [], [MappingProblem("is not UTF-8 text", file=path)]
    except OSError as exc:
        return [], [MappingProblem(f"cannot be read: {exc.strerror or exc}", file=path)]
    if path.suffix.lower() == ".csv":
        return _csv_rows(path, text)
    return _yaml_rows(path, text)


def _yaml_rows(path: Path, text: str) -> tuple[list[_Row], list[MappingProblem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        return [], [MappingProblem(f"invalid YAML: {reason}", file=path, line=line)]
    if node is None:
        return [], [MappingProblem("the file is empty", file=path, severity="warning")]
    item_nodes: list[yaml.Node]
    if isinstance(node, yaml.MappingNode) and isinstance(data, dict):
        keys = {str(k.value): (k, v) for k, v in node.value}
        extra = sorted(set(keys) - {"items"})
        problems = [
            MappingProblem(
                f"unknown key{did_you_mean(key, ['items'])} (a catalog file holds items:)",
                file=path,
                line=keys[key][0].start_mark.line + 1,
                where=key,
            )
            for key in extra
        ]
        if "items" not in keys:
            return [], [*problems, MappingProblem("expected items: (a list)", file=path, line=1)]
        items_node = keys["items"][1]
        data = data.get("items")
        if not isinstance(items_node, yaml.SequenceNode) or not isinstance(data, list):
            line = items_node.start_mark.line + 1
            return [], [
                *problems,
                MappingProblem("expected a list", file=path, line=line, where="items"),
            ]
        item_nodes = list(items_node.value)
        prefix = "items"
    elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        item_nodes, problems, prefix = list(node.value), [], ""
    else:
        return [], [MappingProblem("expected items: followed by a list of items", file=path)]
    rows = []
    for index, (item_node, item_data) in enumerate(zip(item_nodes, data, strict=True)):
        field_lines = {}
        if isinstance(item_node, yaml.MappingNode):
            field_lines = {str(k.value): k.start_mark.line + 1 for k, _ in item_node.value}
        rows.append(
            _Row(item_data, item_node.start_mark.line + 1, f"{prefix}[{index}]", field_lines)
        )
    return rows, problems


_CSV_COLUMNS = tuple(n for n in ItemSpec.model_fields if n != "tags") + TAG_FACETS
_CSV_LISTS = {"stages", *TAG_FACETS}


def _csv_rows(path: Path, text: str) -> tuple[list[_Row], list[MappingProblem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [MappingProblem("the file is empty", file=path, severity="warning")]
    except csv.Error as exc:
        return [], [MappingProblem(f"invalid CSV: {exc}", file=path, line=1)]
    columns = [name.strip() for name in header]
    problems = []
    for name in columns:
        if name not in _CSV_COLUMNS:
            problems.append(
                MappingProblem(
                    f"unknown column {name!r}{did_you_mean(name, _CSV_COLUMNS)} "
                    f"(columns: {', '.join(_CSV_COLUMNS)})",
                    file=path,
                    line=1,
                )
            )
    if problems:
        return [], problems
    rows = []
    number = 0
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(MappingProblem(f"invalid CSV: {exc}", file=path, line=line))
            break
        if not any(cell.strip() for cell in cells):
            line = reader.line_num + 1
            continue
        number += 1
        if len(cells) > len(columns):
            problems.append(
                MappingProblem(
                    f"{len(cells)} cells but the header has {len(columns)} columns",
                    file=path,
                    line=line,
                    where=f"row {number}",
                )
            )
            line = reader.line_num + 1
            continue
        data: dict[str, Any] = {}
        tags: dict[str, list[str]] = {}
        for name, cell in zip(columns, cells, strict=False):
            value = cell.strip()
            if not value:
                continue
            if name in _CSV_LISTS:
                parts = [p.strip() for p in value.split(LIST_SEPARATOR) if p.strip()]
                if name in TAG_FACETS:
                    tags[name] = parts
                else:
                    data[name] = parts
            else:
                data[name] = value
        if tags:
            data["tags"] = tags
        rows.append(_Row(data, line, f"row {number}", is_csv=True))
        line = reader.line_num + 1
    return rows, problems


def _validate(
    path: Path, row: _Row, context: dict[str, Any]
) -> tuple[CatalogItem | None, list[MappingProblem]]:
    if not isinstance(row.data, dict):
        return None, [
            MappingProblem(
                "expected a mapping of fields", file=path, line=row.line, where=row.label
            )
        ]
    problems = _tag_problems(path, row, context["vocabulary"])
    try:
        spec = ItemSpec.model_validate(row.data, context=context)
    except ValidationError as exc:
        errors = [_problem(path, row, error) for error in exc.errors(include_url=False)]
        return None, errors + problems
    if problems:
        return None, problems
    return spec.to_item(f"{path}:{row.line}"), []


def _tag_problems(
    path: Path, row: _Row, vocabulary: Mapping[str, Sequence[str]]
) -> list[MappingProblem]:
    """Unknown facets and tags outside ``content.tags``, each named by its facet."""
    tags = row.data.get("tags")
    if not isinstance(tags, dict):
        return []  # a wrong shape is the model's to report
    problems = []
    line = row.field_lines.get("tags", row.line)
    for facet, values in tags.items():
        where = f"{row.label}, {facet}" if row.is_csv else f"{row.label}.tags.{facet}"
        if facet not in TAG_FACETS:
            problems.append(
                MappingProblem(
                    f"unknown tag facet{did_you_mean(str(facet), TAG_FACETS)} "
                    f"(allowed: {', '.join(TAG_FACETS)})",
                    file=path,
                    line=line,
                    where=where,
                )
            )
            continue
        allowed = vocabulary.get(facet)
        if allowed is None or not isinstance(values, list):
            continue
        known = {norm(v) for v in allowed}
        for tag in values:
            if norm(tag) not in known:
                problems.append(
                    MappingProblem(
                        f"unknown tag {tag!r}{did_you_mean(str(tag), allowed)} "
                        f"(content.tags.{facet}: {', '.join(allowed)})",
                        file=path,
                        line=line,
                        where=where,
                    )
                )
    return problems


def _problem(path: Path, row: _Row, error: Mapping[str, Any]) -> MappingProblem:
    loc = [str(part) for part in error["loc"]]
    name = loc[0] if loc else ""
    if row.is_csv and name == "tags" and len(loc) > 1:
        name = loc[1]  # the facet's own column
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        allowed = _CSV_COLUMNS if row.is_csv else list(ItemSpec.model_fields)
        message = f"unknown field{did_you_mean(name, allowed)} (fields: {', '.join(allowed)})"
    elif kind.endswith("_type") or "parsing" in kind:
        message = f"{message}; found {error.get('input')!r}"
    line = row.field_lines.get(loc[0], row.line) if loc else row.line
    return MappingProblem(message, file=path, line=line, where=_where(row, name))


def _where(row: _Row, name: str) -> str:
    if not name:
        return row.label
    return f"{row.label}, {name}" if row.is_csv else f"{row.label}.{name}"
