"""The Cedar decision engine.

Shipped policies and schema are package data; each policy carries an ``@id`` that decisions
and the audit log report. Team policies (attached through the API) are validated against the
same schema and only ever apply to resources of their own team. A policy set that does not
validate is a start-up or attach error, never a silently permissive one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

import cedarpy

from strongroom.core.context import Grant, Principal
from strongroom.core.errors import ConfigurationError, InvalidInput

MAX_KEPT_DECISIONS = 10_000


@dataclass(frozen=True, slots=True)
class Target:
    """The resource an action applies to, as the policy engine sees it."""

    kind: str
    team: str
    name: str
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    # Resource policies (a bucket's or a key's) that apply to this target besides the team's:
    # "bucket/<name>" or "key/<id>". Set by the service that owns the resource.
    policy_scope: str = ""

    @property
    def srn(self) -> str:
        return f"srn:strongroom:{self.team}:{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    action: str
    grant: Grant | None
    policies: tuple[str, ...]
    messages: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def explain(self) -> str:
        if self.allowed:
            return f"allowed by {', '.join(self.policies)} acting as {self.grant}"
        if self.messages:
            return "; ".join(self.messages)
        if self.policies:
            return f"denied by {', '.join(self.policies)}"
        return f"no policy permits {self.action} for your roles"


@dataclass(frozen=True, slots=True)
class TeamFacts:
    """What the engine needs to know about a team: exemptions and attached policies."""

    exemptions: frozenset[str] = frozenset()
    policies: Mapping[str, str] = field(default_factory=dict)  # name -> Cedar text
    scoped: Mapping[str, str] = field(default_factory=dict)  # scope -> Cedar text (resource policies)


class PolicySource(Protocol):
    """A domain that owns some of a team's policy facts (identity: guardrail exemptions; policy:
    attached team policies; kms and storage: key and bucket policies)."""

    def policy_facts(self, team: str) -> TeamFacts:
        """The facts of ``team`` this source owns (the other fields empty)."""
        ...


def shipped_schema() -> str:
    """The Cedar schema: every ``schema/*.cedarschema`` file (one per domain), in name order."""
    folder = resources.files("strongroom.policy").joinpath("schema")
    parts = sorted((e for e in folder.iterdir() if e.name.endswith(".cedarschema")), key=lambda e: e.name)
    return "\n".join(part.read_text() for part in parts)


def shipped_policies() -> dict[str, str]:
    folder = resources.files("strongroom.policy").joinpath("policies")
    return {
        entry.name: entry.read_text()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".cedar")
    }


class PolicyEngine:
    """Decides whether a principal may perform an action on a target."""

    def __init__(self, schema_text: str, policy_files: Mapping[str, str]) -> None:
        try:
            self._schema = cedarpy.Schema.from_str(schema_text)
        except ValueError as exc:
            raise ConfigurationError(f"the Cedar schema does not parse: {exc}") from exc
        self._schema_text = schema_text
        self.actions = _schema_actions(schema_text)
        combined = "\n".join(policy_files.values())
        self._check(combined, source="shipped policies")
        self._base = _policies_by_id(combined, prefix=None, source="shipped policies")
        self._base_set = cedarpy.PolicySet.from_json_str(json.dumps(_as_policy_set_json(self._base)))
        self._messages = {pid: _annotation(p, "message") for pid, p in self._base.items()}
        self._teams: dict[str, TeamFacts] = {}
        self._team_sets: dict[tuple[str, str], Any] = {}
        self._sources: list[PolicySource] = []
        self._lock = threading.Lock()
        # Decisions are a function of their inputs and of the team facts, so the same question
        # asked again (a durable tracking call, hundreds a second) gets the answer Cedar gave,
        # until the facts are reloaded: every change of facts bumps the generation and empties it.
        self._decided: dict[tuple[object, ...], tuple[Decision, ...]] = {}
        self._generation = 0

    @classmethod
    def shipped(cls) -> PolicyEngine:
        return cls(shipped_schema(), shipped_policies())

    # -- validation -------------------------------------------------------------------------

    def _check(self, text: str, source: str) -> None:
        try:
            result = cedarpy.validate_policies(text, self._schema)
        except ValueError as exc:
            raise InvalidInput(f"{source} do not parse: {exc}", field="policy") from exc
        if not result.validation_passed:
            errors = "; ".join(e.error for e in result.errors) or "unknown validation error"
            raise InvalidInput(f"{source} do not validate against the schema: {errors}", field="policy")

    def validate_team_policy(self, team: str, name: str, text: str) -> None:
        """Raise ``InvalidInput`` unless ``text`` parses and validates against the schema."""
        self._check(text, source=f"policy {name!r}")
        _policies_by_id(text, prefix=f"team:{team}:{name}", source=f"policy {name!r}")

    # -- team facts: one registry of policy sources ----------------------------------------

    def register_source(self, source: PolicySource) -> None:
        """Add a source of team facts (exemptions, team policies, resource policies), asked for
        a team's facts the first time a decision needs them after ``invalidate``."""
        with self._lock:
            self._sources.append(source)
            self._teams.clear()
            self._team_sets.clear()
            self._forget_decisions()

    def invalidate(self, team: str) -> None:
        """Forget what the sources said about ``team`` (its facts changed); reloaded when next needed."""
        with self._lock:
            self._teams.pop(team, None)
            self._team_sets = {k: v for k, v in self._team_sets.items() if k[0] != team}
            self._forget_decisions()

    def invalidate_all(self) -> None:
        """Forget what the sources said about every team (another process may have changed them)."""
        with self._lock:
            self._teams.clear()
            self._team_sets.clear()
            self._forget_decisions()

    def _forget_decisions(self) -> None:
        """Called with the lock held whenever facts are dropped: decisions made on them go too."""
        self._generation += 1
        self._decided.clear()

    def team_facts(self, team: str) -> TeamFacts:
        """``team``'s facts, merged from every registered source (cached until ``invalidate``)."""
        cached = self._teams.get(team)
        if cached is not None or not team:
            return cached or TeamFacts()
        exemptions: set[str] = set()
        policies: dict[str, str] = {}
        scoped: dict[str, str] = {}
        for source in list(self._sources):
            facts = source.policy_facts(team)
            exemptions |= facts.exemptions
            policies.update(facts.policies)
            scoped.update(facts.scoped)
        merged = TeamFacts(frozenset(exemptions), policies, scoped)
        with self._lock:
            self._teams[team] = merged
        return merged

    def _policy_set_for(self, team: str, scope: str = "") -> Any:
        facts = self.team_facts(team) if team else None
        scoped_text = facts.scoped.get(scope, "") if facts is not None and scope else ""
        if not team or facts is None or (not facts.policies and not scoped_text):
            return self._base_set
        cache_key = (team, scope if scoped_text else "")
        cached = self._team_sets.get(cache_key)
        if cached is not None:
            return cached
        merged = dict(self._base)
        sources = [(f"team:{team}:{name}", name, text) for name, text in facts.policies.items()]
        if scoped_text:
            sources.append((f"{scope}", scope, scoped_text))
        for prefix, name, text in sources:
            for pid, policy in _policies_by_id(text, prefix=prefix, source=name).items():
                merged[pid] = policy
                self._messages.setdefault(pid, _annotation(policy, "message"))
        policy_set = cedarpy.PolicySet.from_json_str(json.dumps(_as_policy_set_json(merged)))
        with self._lock:
            self._team_sets[cache_key] = policy_set
        return policy_set

    # -- decisions --------------------------------------------------------------------------

    def decide(
        self,
        principal: Principal,
        action: str,
        target: Target,
        context: Mapping[str, Any] | None = None,
        grants: Iterable[Grant] | None = None,
    ) -> Decision:
        """Allow if any of the principal's applicable grants is allowed; forbids always win."""
        return self.decide_many(principal, (action,), target, context, grants)[0]

    def decide_many(
        self,
        principal: Principal,
        actions: Sequence[str],
        target: Target,
        context: Mapping[str, Any] | None = None,
        grants: Iterable[Grant] | None = None,
    ) -> list[Decision]:
        """``decide`` for each of ``actions`` on one target, in one Cedar batch per grant (the
        entities, policy set and schema are read once: a role's permission table costs one call,
        not one per action). The decisions come back in the order of ``actions``."""
        unknown = [a for a in actions if a not in self.actions]
        if unknown:
            raise ConfigurationError(f"action {unknown[0]!r} is not declared in the Cedar schema")
        candidates = tuple(grants) if grants is not None else principal.grants
        # Only context-free questions are kept: a context's values need not be hashable.
        key = None if context else _question(principal, candidates, tuple(actions), target)
        if key is not None and (known := self._decided.get(key)) is not None:
            return list(known)
        generation = self._generation
        decisions = self._decide(principal, candidates, actions, target, context)
        if key is not None:
            with self._lock:
                if generation == self._generation:  # no facts dropped meanwhile: the answer still stands
                    if len(self._decided) >= MAX_KEPT_DECISIONS:
                        self._decided.clear()
                    self._decided[key] = tuple(decisions)
        return decisions

    def _decide(
        self,
        principal: Principal,
        candidates: tuple[Grant, ...],
        actions: Sequence[str],
        target: Target,
        context: Mapping[str, Any] | None,
    ) -> list[Decision]:
        """Cedar's answer to ``decide_many`` (see there)."""
        facts = self.team_facts(target.team)
        entities = [
            {"uid": {"type": "User", "id": principal.user}, "attrs": {"name": principal.user}, "parents": []},
            {
                "uid": {"type": "Resource", "id": target.srn},
                "attrs": {"kind": target.kind, "team": target.team, "owner": target.owner, "name": target.name},
                "parents": [],
                "tags": dict(target.tags),
            },
        ]
        policy_set = self._policy_set_for(target.team, target.policy_scope)
        decided: dict[int, Decision] = {}
        denials: list[list[str]] = [[] for _ in actions]
        errors: list[list[str]] = [[] for _ in actions]
        for grant in candidates or (Grant(role="", team=""),):
            pending = [i for i in range(len(actions)) if i not in decided]
            if not pending:
                break
            request_context: dict[str, Any] = {
                "role": grant.role,
                "team": grant.team,
                "token_kind": principal.token_kind,
                "scope": principal.scope,
                "guardrail_exemptions": sorted(facts.exemptions),
            }
            if context:
                request_context.update(context)
            requests = [
                {
                    "principal": {"type": "User", "id": principal.user},
                    "action": {"type": "Action", "id": actions[i]},
                    "resource": {"type": "Resource", "id": target.srn},
                    "context": request_context,
                }
                for i in pending
            ]
            results = cedarpy.is_authorized_batch(requests, policy_set, entities, self._schema)
            for i, result in zip(pending, results, strict=True):
                errors[i].extend(str(e) for e in result.diagnostics.errors)
                reasons = tuple(result.diagnostics.reasons)
                if result.allowed:
                    decided[i] = Decision(True, actions[i], grant, reasons, errors=tuple(errors[i]))
                else:
                    denials[i].extend(r for r in reasons if r not in denials[i])
        for i in range(len(actions)):
            if i not in decided:
                messages = tuple(m for m in (self._messages.get(p, "") for p in denials[i]) if m)
                decided[i] = Decision(False, actions[i], None, tuple(denials[i]), messages, tuple(errors[i]))
        return [decided[i] for i in range(len(actions))]


def _question(
    principal: Principal, grants: tuple[Grant, ...], actions: tuple[str, ...], target: Target
) -> tuple[object, ...]:
    """Everything of a context-free decision's inputs besides the team facts (see ``decide_many``)."""
    tags = tuple(sorted(target.tags.items()))
    where = (target.kind, target.team, target.name, target.owner, tags, target.policy_scope)
    return (principal.user, principal.token_kind, principal.scope, grants, actions, where)


def _schema_actions(schema_text: str) -> frozenset[str]:
    """Action names declared in the schema (groups included): ``action a, b in [...] ...;``."""
    body = re.sub(r"//[^\n]*", "", schema_text)
    names: set[str] = set()
    for match in re.finditer(r"\baction\s+(.+?)(?:\bin\b|\bappliesTo\b|;)", body, re.S):
        names.update(raw.strip().strip('"') for raw in match.group(1).split(",") if raw.strip())
    return frozenset(names)


def _policies_by_id(text: str, prefix: str | None, source: str) -> dict[str, dict[str, Any]]:
    """Parse Cedar text to JSON policies keyed by their ``@id`` (or prefixed positional ids)."""
    try:
        parsed = json.loads(cedarpy.policies_to_json_str(text))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{source} do not parse: {exc}", field="policy") from exc
    if parsed.get("templates"):
        raise InvalidInput(f"{source}: policy templates are not supported", field="policy")
    out: dict[str, dict[str, Any]] = {}
    for index, policy in enumerate(parsed.get("staticPolicies", {}).values()):
        annotated = _annotation(policy, "id")
        if prefix is None:
            if not annotated:
                raise ConfigurationError(f"every policy in {source} needs an @id annotation")
            pid = annotated
        else:
            pid = f"{prefix}:{annotated or index}"
        if pid in out:
            raise InvalidInput(f"{source}: duplicate policy id {pid!r}", field="policy")
        out[pid] = policy
    return out


def _annotation(policy: Mapping[str, Any], key: str) -> str:
    annotations = policy.get("annotations") or {}
    value = annotations.get(key)
    return str(value) if value is not None else ""


def _as_policy_set_json(policies: Mapping[str, Any]) -> dict[str, Any]:
    return {"staticPolicies": dict(policies), "templates": {}, "templateLinks": []}
