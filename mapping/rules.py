"""Rules: validated against the catalog and the synced fields, compiled into fast checks.

Validation happens once, at load time (:func:`check_rules`): unknown fields, content ids
and tags, rules that can never show anything (their content is for other stages, or an
exclusion always overrides them) are errors with the rule's key path. Rules do not refer to
each other, so there are no cycles to find.

A compiled rule is a tuple of small predicates over a :class:`FactView` (the deal's facts
in compare form, built once per recommendation), indexed by its most selective condition so
only a few of a thousand rules are looked at for one deal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.core.config import ConnectionConfig
from connectors.core.suggest import did_you_mean
from mapping.catalog import Catalog
from mapping.config import TAG_FACETS, AmountRange, CurrencySettings, Rule, RuleConditions
from mapping.facts import OBJECTS, STANDARD_FIELDS, OpportunityFacts, norm
from mapping.problems import MappingProblem, PathKey

FieldRef = tuple[str, str]  # (object, field name)

# Conditions on one text fact: rule key → (FactView attribute, words for explanations).
TEXT_CONDITIONS: dict[str, tuple[str, str]] = {
    "industries": ("industry", "industry"),
    "types": ("type", "type"),
    "record_types": ("record_type", "record type"),
    "countries": ("country", "country"),
    "regions": ("region", "region"),
    "account_types": ("account_type", "account type"),
    "owners": ("owner_email", "owner"),
    "pipelines": ("pipeline", "pipeline"),
}
# Most selective first: a rule is indexed by the first of these it has.
_ANCHORS = (*TEXT_CONDITIONS, "stages")


# --- fields ---------------------------------------------------------------------------------


def synced_custom_fields(connections: Iterable[ConnectionConfig]) -> dict[str, set[str]]:
    """Custom fields the configured connections sync, per object (opportunity, account).

    A connector config may offer ``custom_field_names() -> {"opportunity": [...], ...}``;
    the built-in ones are read from their ``extra_fields`` (Salesforce) and
    ``extra_properties`` (HubSpot) blocks.
    """
    found: dict[str, set[str]] = {"opportunity": set(), "account": set(), "owner": set()}
    aliases = {
        "opportunity": "opportunity",
        "deals": "opportunity",
        "account": "account",
        "companies": "account",
    }
    for connection in connections:
        method = getattr(connection, "custom_field_names", None)
        blocks: Mapping[str, Iterable[str]] = {}
        if callable(method):
            blocks = method()
        else:
            for attribute in ("extra_fields", "extra_properties"):
                block = getattr(connection, attribute, None)
                if block is not None and hasattr(block, "model_dump"):
                    blocks = {**blocks, **block.model_dump()}
        for key, names in blocks.items():
            obj = aliases.get(key)
            if obj is not None:
                found[obj].update(names)
    return found


def resolve_field(key: str, custom: Mapping[str, set[str]]) -> FieldRef | str:
    """``opportunity.X``, ``account.X``, ``owner.X`` or a bare ``X`` → (object, name).

    Returns an error message instead when the field is unknown or ambiguous.
    """
    known = {obj: set(STANDARD_FIELDS[obj]) | set(custom.get(obj, ())) for obj in OBJECTS}
    qualified = sorted(f"{obj}.{name}" for obj in OBJECTS for name in known[obj])
    obj, dot, name = key.partition(".")
    if dot and obj in OBJECTS:
        if name in known[obj]:
            return obj, name
    elif not dot:
        owners = [o for o in OBJECTS if key in known[o]]
        if len(owners) == 1:
            return owners[0], key
        if len(owners) > 1:
            return f"field {key!r} exists on {' and '.join(owners)}: write e.g. {owners[0]}.{key}"
    customs = sorted(f"{o}.{n}" for o in OBJECTS for n in custom.get(o, ()))
    synced = ", ".join(customs) if customs else "none configured"
    return (
        f"unknown field {key!r}{did_you_mean(key, qualified)} (synced custom fields: {synced}; "
        "add it to the connection's extra_fields / extra_properties to use it)"
    )


# --- the deal's facts in compare form --------------------------------------------------------


class FactView:
    """One deal's facts, normalized once for all rules."""

    __slots__ = (
        "_amounts",
        "account_type",
        "amount",
        "country",
        "currency",
        "days_in_stage",
        "facts",
        "industry",
        "owner_email",
        "pipeline",
        "record_type",
        "region",
        "settings",
        "stage",
        "type",
    )

    def __init__(
        self,
        facts: OpportunityFacts,
        stage: str | None,
        now: datetime,
        currency: CurrencySettings,
    ) -> None:
        opportunity, account, owner = facts.opportunity, facts.account, facts.owner
        self.facts = facts
        self.stage = stage
        self.settings = currency
        self.pipeline = _norm_or_none(opportunity.pipeline_crm_id)
        self.type = _norm_or_none(opportunity.type)
        self.record_type = _norm_or_none(opportunity.record_type)
        self.industry = _norm_or_none(account.industry) if account else None
        self.country = _norm_or_none(account.country) if account else None
        self.region = _norm_or_none(account.region) if account else None
        self.account_type = _norm_or_none(account.type) if account else None
        self.owner_email = _norm_or_none(owner.email) if owner else None
        self.amount = float(opportunity.amount) if opportunity.amount is not None else None
        self.currency = opportunity.currency or currency.base
        entered = opportunity.stage_entered_at
        self.days_in_stage = (now - entered).days if entered is not None else None
        self._amounts: dict[str | None, float | None] = {}

    def amount_in(self, currency: str | None) -> float | None:
        """The deal's amount in ``currency`` (None: as is), or None if not convertible."""
        if currency in self._amounts:
            return self._amounts[currency]
        value = self._convert(currency)
        self._amounts[currency] = value
        return value

    def _convert(self, currency: str | None) -> float | None:
        amount = self.amount
        if amount is None:
            return None
        target = currency or self.settings.base
        if target is None or target == self.currency:
            return amount
        if self.currency is None:
            return None
        rates = self.settings.rates
        base = self.settings.base
        source_rate = 1.0 if self.currency == base else rates.get(self.currency)
        target_rate = 1.0 if target == base else rates.get(target)
        if source_rate is None or target_rate is None:
            return None
        return amount * source_rate / target_rate

    def field_values(self, ref: FieldRef) -> list[str]:
        """The compare forms of a field; a ``;``-joined multi-select gives several."""
        value = self.facts.value(*ref)
        if value is None:
            return []
        if isinstance(value, list | tuple | set | frozenset):
            return [norm(v) for v in value]
        if isinstance(value, str) and ";" in value:
            return [norm(v) for v in value.split(";") if v.strip()]
        return [norm(value)]

    def describe(self, key: str) -> str:
        """The deal's fact behind condition ``key``, as written in the CRM."""
        opportunity, account, owner = self.facts.opportunity, self.facts.account, self.facts.owner
        raw: Any = {
            "industries": account.industry if account else None,
            "types": opportunity.type,
            "record_types": opportunity.record_type,
            "countries": account.country if account else None,
            "regions": account.region if account else None,
            "account_types": account.type if account else None,
            "owners": owner.email if owner else None,
            "pipelines": opportunity.pipeline_crm_id,
        }.get(key)
        return str(raw)


def _norm_or_none(value: Any) -> str | None:
    return norm(value) if value is not None and value != "" else None


# --- compiled rules -------------------------------------------------------------------------

Check = Callable[[FactView], bool]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run: its predicates, the content it selects and its index key."""

    index: int
    rule: Rule
    checks: tuple[Check, ...]
    fields: tuple[tuple[str, FieldRef], ...]
    #: Ids of the content it selects (before the stage filter), in catalog order.
    selected: tuple[str, ...]
    #: ("industries", "banking") etc., or None when the rule must always be looked at.
    anchors: tuple[tuple[str, str], ...] | None

    @property
    def id(self) -> str:
        """The rule's id."""
        return self.rule.id

    def matches(self, view: FactView) -> bool:
        """Whether every condition holds for the deal."""
        for check in self.checks:
            if not check(view):
                return False
        return True

    def explain(self, view: FactView) -> str:
        """``industry Banking, amount 80,000 USD matched rule big-banks``."""
        when = self.rule.when
        facts = [
            f"{TEXT_CONDITIONS[key][1]} {view.describe(key)}"
            for key in TEXT_CONDITIONS
            if getattr(when, key)
        ]
        if when.amount is not None and view.amount is not None:
            text = f"amount {view.amount:,.0f} {view.currency or ''}".rstrip()
            target = when.amount.currency
            converted = view.amount_in(target)
            if target and target != view.currency and converted is not None:
                text += f" (≈ {converted:,.0f} {target})"
            facts.append(text)
        if when.days_in_stage is not None:
            facts.append(f"{view.days_in_stage} days in stage")
        for key, ref in self.fields:
            facts.append(f"{key} {view.facts.value(*ref)}")
        verb = "excluded by" if self.rule.exclude else "matched"
        if facts:
            return f"{', '.join(facts)} {verb} rule {self.rule.id}"
        if when.stages:
            return f"stage {view.stage} {verb} rule {self.rule.id}"
        return f"{verb} rule {self.rule.id} (applies to every deal)"


def _in(attribute: str, allowed: frozenset[str]) -> Check:
    def check(view: FactView) -> bool:
        return getattr(view, attribute) in allowed

    return check


def _amount(condition: AmountRange) -> Check:
    low, high, currency = condition.min, condition.max, condition.currency

    def check(view: FactView) -> bool:
        amount = view.amount_in(currency)
        if amount is None:
            return False
        return (low is None or amount >= low) and (high is None or amount <= high)

    return check


def _days(low: int | None, high: int | None) -> Check:
    def check(view: FactView) -> bool:
        days = view.days_in_stage
        if days is None:
            return False
        return (low is None or days >= low) and (high is None or days <= high)

    return check


def _field(ref: FieldRef, allowed: frozenset[str]) -> Check:
    def check(view: FactView) -> bool:
        return any(value in allowed for value in view.field_values(ref))

    return check


def compile_rules(
    rules: Sequence[Rule], catalog: Catalog, custom: Mapping[str, set[str]]
) -> list[CompiledRule]:
    """Compile *valid* rules (see :func:`check_rules`); unknown references never match."""
    tags = catalog.tag_index()
    return [compile_rule(i, rule, catalog, custom, tags) for i, rule in enumerate(rules)]


def compile_rule(
    index: int,
    rule: Rule,
    catalog: Catalog,
    custom: Mapping[str, set[str]],
    tags: Mapping[str, list[str]] | None = None,
) -> CompiledRule:
    """Compile one rule."""
    when = rule.when
    checks: list[Check] = []
    anchors: tuple[tuple[str, str], ...] | None = None
    for key in _ANCHORS:
        values = getattr(when, key)
        if not values:
            continue
        normalized = frozenset(values) if key == "stages" else frozenset(norm(v) for v in values)
        attribute = "stage" if key == "stages" else TEXT_CONDITIONS[key][0]
        checks.append(_in(attribute, normalized))
        if anchors is None:
            anchors = tuple(sorted((key, value) for value in normalized))
    if when.amount is not None:
        checks.append(_amount(when.amount))
    if when.days_in_stage is not None:
        checks.append(_days(when.days_in_stage.min, when.days_in_stage.max))
    fields: list[tuple[str, FieldRef]] = []
    for key, values in when.fields.items():
        ref = resolve_field(key, custom)
        if isinstance(ref, str):
            checks.append(lambda view: False)
            continue
        fields.append((key, ref))
        checks.append(_field(ref, frozenset(norm(v) for v in values)))
    return CompiledRule(
        index=index,
        rule=rule,
        checks=tuple(checks),
        fields=tuple(fields),
        selected=tuple(selection(rule, catalog, tags)),
        anchors=anchors,
    )


def selection(
    rule: Rule, catalog: Catalog, tags: Mapping[str, list[str]] | None = None
) -> list[str]:
    """Ids of the content ``rule`` selects, in catalog order."""
    index = tags if tags is not None else catalog.tag_index()
    wanted: set[str] = {cid for cid in rule.select.content_ids if cid in catalog.by_id}
    for tag in rule.select.tags:
        wanted.update(index.get(_tag_key(tag), ()))
    return sorted(wanted, key=catalog.position.__getitem__)


def _tag_key(tag: str) -> str:
    facet, colon, value = tag.partition(":")
    if colon and facet.strip() in TAG_FACETS:
        return f"{facet.strip()}:{norm(value)}"
    return norm(tag)


class RuleIndex:
    """Finds the rules worth checking for a deal: those anchored on one of its facts."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        self.always: tuple[CompiledRule, ...] = tuple(r for r in rules if r.anchors is None)
        buckets: dict[tuple[str, str], list[CompiledRule]] = {}
        for rule in rules:
            for anchor in rule.anchors or ():
                buckets.setdefault(anchor, []).append(rule)
        self.buckets = buckets
        self.kinds = tuple(sorted({kind for kind, _ in buckets}))

    def matching(self, view: FactView) -> list[CompiledRule]:
        """The rules whose conditions all hold, in configuration order."""
        matched = []
        for rule in self.always:
            for check in rule.checks:
                if not check(view):
                    break
            else:
                matched.append(rule)
        for kind in self.kinds:
            attribute = "stage" if kind == "stages" else TEXT_CONDITIONS[kind][0]
            value = getattr(view, attribute)
            if value is None:
                continue
            for rule in self.buckets.get((kind, value), ()):
                # The bucket already proved the anchor condition (always checks[0]).
                for check in rule.checks[1:]:
                    if not check(view):
                        break
                else:
                    matched.append(rule)
        matched.sort(key=_by_index)
        return matched


def _by_index(rule: CompiledRule) -> int:
    return rule.index


# --- validation ------------------------------------------------------------------------------


def check_rules(
    rules: Sequence[Rule],
    catalog: Catalog,
    *,
    custom_fields: Mapping[str, set[str]],
    canonical_stages: Sequence[str],
    check_stage_names: bool = True,
    catalog_configured: bool = True,
) -> list[MappingProblem]:
    """Every problem with ``rules`` (paths ``("rules", i, ...)``), errors and warnings."""
    problems: list[MappingProblem] = []
    tag_index = catalog.tag_index()
    stages = set(canonical_stages)
    selections: dict[int, list[str]] = {}
    for index, rule in enumerate(rules):
        where: PathKey = ("rules", index)
        if check_stage_names:
            for position, stage in enumerate(rule.when.stages):
                if stage not in stages:
                    problems.append(
                        MappingProblem(
                            f"{stage!r} is not a canonical stage{did_you_mean(stage, stages)}",
                            path=(*where, "when", "stages", position),
                        )
                    )
        for key in rule.when.fields:
            ref = resolve_field(key, custom_fields)
            if isinstance(ref, str):
                problems.append(MappingProblem(ref, path=(*where, "when", "fields", key)))
        if not catalog_configured:
            continue  # nothing to check selections against yet
        for position, content_id in enumerate(rule.select.content_ids):
            if content_id not in catalog.by_id:
                problems.append(
                    MappingProblem(
                        f"unknown content id {content_id!r}"
                        f"{did_you_mean(content_id, catalog.by_id)}",
                        path=(*where, "select", "content_ids", position),
                    )
                )
        for position, tag in enumerate(rule.select.tags):
            if _tag_key(tag) not in tag_index:
                written = sorted(
                    {v for item in catalog.items for values in item.tags.values() for v in values}
                )
                problems.append(
                    MappingProblem(
                        f"no content has tag {tag!r}{did_you_mean(tag, written)}",
                        path=(*where, "select", "tags", position),
                    )
                )
        selections[index] = selection(rule, catalog, tag_index)
    if catalog_configured:
        problems += _contradictions(rules, catalog, selections, custom_fields)
    return problems


def _fits(rule: Rule, catalog: Catalog, ids: Iterable[str]) -> list[str]:
    """The selected ids whose stages overlap the rule's stage condition (all, if none)."""
    wanted = set(rule.when.stages)
    return [cid for cid in ids if not wanted or wanted.intersection(catalog.by_id[cid].stages)]


def _contradictions(
    rules: Sequence[Rule],
    catalog: Catalog,
    selections: Mapping[int, list[str]],
    custom: Mapping[str, set[str]],
) -> list[MappingProblem]:
    problems: list[MappingProblem] = []
    excluders = [(i, r) for i, r in enumerate(rules) if r.exclude]
    for index, rule in enumerate(rules):
        selected = selections.get(index, [])
        if not selected:
            continue  # an unknown id or tag was reported already
        fitting = _fits(rule, catalog, selected)
        where: PathKey = ("rules", index)
        if not fitting:
            sample = catalog.by_id[selected[0]]
            verb = "excludes" if rule.exclude else "shows"
            problems.append(
                MappingProblem(
                    f"{verb} nothing: it applies only at stages {', '.join(rule.when.stages)} "
                    f"but the content it selects is for other stages (e.g. {sample.id}: "
                    f"{', '.join(sample.stages)})",
                    path=(*where, "when", "stages"),
                    severity="warning" if rule.exclude else "error",
                )
            )
            continue
        if rule.exclude:
            continue
        for other_index, other in excluders:
            if other_index == index or not implies(rule.when, other.when, custom):
                continue
            excluded = set(selections.get(other_index, ()))
            if excluded.issuperset(fitting):
                problems.append(
                    MappingProblem(
                        f"can never show anything: rule {other.id!r} (rules[{other_index}]) "
                        "excludes everything it selects whenever it applies",
                        path=(*where, "select"),
                    )
                )
                break
    return problems


def implies(a: RuleConditions, b: RuleConditions, custom: Mapping[str, set[str]]) -> bool:
    """Whether every deal matching ``a`` also matches ``b`` (conservatively: False if unsure)."""
    for key in ("stages", *TEXT_CONDITIONS):
        wanted = getattr(b, key)
        if not wanted:
            continue
        have = getattr(a, key)
        if not have:
            return False
        if key == "stages":
            if not set(have) <= set(wanted):
                return False
        elif not {norm(v) for v in have} <= {norm(v) for v in wanted}:
            return False
    for narrow, wide in ((a.amount, b.amount), (a.days_in_stage, b.days_in_stage)):
        if wide is None:
            continue
        if narrow is None:
            return False
        if getattr(narrow, "currency", None) != getattr(wide, "currency", None):
            return False
        if wide.min is not None and (narrow.min is None or narrow.min < wide.min):
            return False
        if wide.max is not None and (narrow.max is None or narrow.max > wide.max):
            return False
    a_fields = {resolve_field(k, custom): {norm(v) for v in vs} for k, vs in a.fields.items()}
    for key, values in b.fields.items():
        have_values = a_fields.get(resolve_field(key, custom))
        if have_values is None or not have_values <= {norm(v) for v in values}:
            return False
    return True
