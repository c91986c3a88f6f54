"""The offline plan's diff: two JSON plans compared by identity, each change marked as Pulumi would.

Resources are matched by URN (the identity the Pulumi engine uses); inside a resource, list
items are matched by their key (a ``name``, a ``Sid``, an ECR replication destination's
registry and region, a scalar's own value), so inserting one item shows one addition, not
every later item as changed. The comparison itself is deepdiff's (``iterable_compare_func``
pairs list items by key), not hand-written list matching.

Each changed resource gets the operation ``pulumi preview`` would show:

* ``+`` create, ``-`` delete (URN only in one plan);
* ``+-`` replace: its explicit provider changed, or an input that forces replacement changed
  (:mod:`infra.replacement` holds that table and its sources), or one named in the resource's
  ``replaceOnChanges`` option;
* ``~`` update otherwise. Inputs listed in ``ignoreChanges`` are ignored, as the engine does.

What is not compared: ``dependencies`` and ``parent`` (the engine does not update a resource
because its dependencies moved), and secrets (both sides read ``[secret]``). Resources with the
same changes are shown once, as a group, which keeps a hub move readable.

Like the plan itself, this is the program's desired state against another desired state (the
base branch's), not against the live cloud: that is ``pulumi preview``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic
from deepdiff import DeepDiff  # type: ignore[attr-defined,unused-ignore]
from deepdiff.helper import CannotCompare

from infra import replacement

PathItem = str | int
Path = tuple[PathItem, ...]

#: Keys that name a list item, in order of preference; a dict with none of them is matched by
#: position. (registryId, region) is an ECR replication destination; namePattern an Image
#: Updater applicationRefs entry (required and one per region's Application: the ImageUpdater
#: CRD of chart 1.2.4, v1.2.2 api/v1alpha1/imageupdater_types.go; infra/manifests/argocd.py).
ITEM_KEYS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("namePattern",),
    ("Sid",),
    ("registryId", "region"),
    ("deviceName",),
    ("server", "namespace"),
    ("key",),
    ("filter", "filterType"),
)

OP_SYMBOL = {"replace": "+-", "delete": "-", "create": "+", "update": "~"}
OP_ORDER = ("replace", "delete", "create", "update")


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyChange:
    """One changed property: ``kind`` is add, remove, change or reorder; ``path`` as displayed."""

    path: str
    kind: str
    old: Any = None
    new: Any = None

    def render(self) -> str:
        if self.kind == "add":
            return f"+ {self.path}: {_show(self.new)}"
        if self.kind == "remove":
            return f"- {self.path}: {_show(self.old)}"
        if self.kind == "reorder":
            return f"~ {self.path}: order changed"
        return f"~ {self.path}: {_show(self.old)} => {_show(self.new)}"


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource; ``replace_keys`` says why a replacement happens."""

    op: str
    urn: str
    type: str
    name: str
    changes: tuple[PropertyChange, ...] = ()
    replace_keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class StackDiff:
    stack: str
    resources: list[ResourceChange] = field(default_factory=list)
    outputs: list[PropertyChange] = field(default_factory=list)
    new_stack: bool = False

    def count(self, op: str) -> int:
        return sum(1 for r in self.resources if r.op == op)

    @property
    def total(self) -> int:
        return len(self.resources) + len(self.outputs)


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------


def decode_json_strings(value: Any) -> Any:
    """IAM, lifecycle and kubeconfig documents travel as JSON strings; compare them as data."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return decode_json_strings(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, Mapping):
        return {k: decode_json_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_json_strings(v) for v in value]
    return value


def item_key(item: Any) -> tuple[Any, ...] | None:
    """The identity of a list item: its key fields, or its value for a scalar; None if unkeyed."""
    if isinstance(item, Mapping):
        for fields in ITEM_KEYS:
            if all(isinstance(item.get(f), str | int) for f in fields):
                return tuple((f, item[f]) for f in fields)
        return None
    if isinstance(item, list):
        return None
    return (("value", json.dumps(item, sort_keys=True)),)


def _same_item(a: Any, b: Any, level: Any = None) -> bool:
    ka, kb = item_key(a), item_key(b)
    if ka is None or kb is None:
        raise CannotCompare() from None
    return ka == kb


def _label(item: Any, index: int) -> str:
    key = item_key(item)
    if key is None or key[0][0] == "value":
        return f"[{index}]"
    return "[" + ",".join(f"{f}={v}" for f, v in key) + "]"


def _display_path(root: Any, path: Sequence[PathItem]) -> str:
    """``a.b[name=x].c``: list items named by their key where they have one."""
    out = ""
    node = root
    for part in path:
        if isinstance(part, int) and isinstance(node, list):
            item = node[part] if 0 <= part < len(node) else None
            out += _label(item, part)
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return out


def _get(root: Any, path: Sequence[PathItem]) -> Any:
    node = root
    for part in path:
        if isinstance(node, Mapping):
            node = node.get(part)  # type: ignore[call-overload]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _keys_in_order(items: Any) -> list[Any]:
    return [item_key(i) for i in items] if isinstance(items, list) else []


def compare(old: Any, new: Any) -> list[tuple[Path, PropertyChange]]:
    """Every changed property between two values, with its raw path (keys and list indices)."""
    diff = DeepDiff(
        old,
        new,
        iterable_compare_func=_same_item,
        threshold_to_diff_deeper=0,
        view="tree",
    )
    changes: list[tuple[Path, PropertyChange]] = []
    moved_lists: set[Path] = set()
    for report, levels in diff.items():
        for level in levels:
            p1: Path = tuple(level.path(output_format="list"))
            p2: Path = tuple(level.path(use_t2=True, output_format="list"))
            if report in ("dictionary_item_added", "iterable_item_added"):
                changes.append((p2, PropertyChange(_display_path(new, p2), "add", new=level.t2)))
            elif report in ("dictionary_item_removed", "iterable_item_removed"):
                changes.append((p1, PropertyChange(_display_path(old, p1), "remove", old=level.t1)))
            elif report == "iterable_item_moved":
                moved_lists.add(p2[:-1])
            elif report in ("values_changed", "type_changes"):
                if p1 and isinstance(p1[-1], int) and item_key(level.t1) != item_key(level.t2):
                    # Two different items at one position: one went, another came.
                    changes.append((p1, PropertyChange(_display_path(old, p1), "remove", old=level.t1)))
                    changes.append((p2, PropertyChange(_display_path(new, p2), "add", new=level.t2)))
                else:
                    changes.append(
                        (p2, PropertyChange(_display_path(new, p2), "change", old=level.t1, new=level.t2))
                    )
    for list_path in sorted(moved_lists, key=str):
        before, after = _keys_in_order(_get(old, list_path)), _keys_in_order(_get(new, list_path))
        common = set(before) & set(after)
        if [k for k in before if k in common] != [k for k in after if k in common]:
            changes.append((list_path, PropertyChange(_display_path(new, list_path), "reorder")))
    return sorted(changes, key=lambda c: (c[1].path, c[1].kind))


def _apply_ignore_changes(old: dict[str, Any], new: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The new inputs with each ignored path set back to its old value (the engine's
    ``processIgnoreChanges``, pulumi/pulumi pkg/resource/deploy/step_generator.go)."""
    result = json.loads(json.dumps(new))
    for dotted in paths:
        parts = dotted.split(".")
        src: Any = old
        dst: Any = result
        for part in parts[:-1]:
            src = src.get(part) if isinstance(src, Mapping) else None
            dst = dst.setdefault(part, {}) if isinstance(dst, dict) else None
        if not isinstance(dst, dict):
            continue
        if isinstance(src, Mapping) and parts[-1] in src:
            dst[parts[-1]] = src[parts[-1]]
        else:
            dst.pop(parts[-1], None)
    return result


def _provider_label(value: Any) -> Any:
    """A provider reference as a person reads it: the provider resource's name."""
    if isinstance(value, str):
        return value.rsplit("::", 1)[-1]
    if isinstance(value, Mapping):
        return {k: _provider_label(v) for k, v in sorted(value.items())}
    return value


def diff_resource(old: Mapping[str, Any], new: Mapping[str, Any]) -> ResourceChange | None:
    """The change of one resource present in both plans; None when nothing Pulumi acts on changed."""
    old_inputs = decode_json_strings(old.get("inputs") or {})
    new_inputs = decode_json_strings(new.get("inputs") or {})
    new_inputs = _apply_ignore_changes(old_inputs, new_inputs, new.get("ignoreChanges") or ())
    # A reordered set-typed input is no change (infra/replacement.py SET_INPUTS): the provider
    # compares it as a set, so neither an update nor a replacement follows.
    raw = [
        (path, change)
        for path, change in compare(old_inputs, new_inputs)
        if not (change.kind == "reorder" and replacement.is_set_input(new["type"], path))
    ]
    changes = [c for _, c in raw]
    custom = bool(new.get("custom"))
    keys = replacement.replace_keys(
        new["type"],
        [p for p, _ in raw],
        new.get("replaceOnChanges") or (),
        values={tuple(p): (c.old, c.new) for p, c in raw},
    )
    if _provider_label(old.get("provider")) != _provider_label(new.get("provider")):
        changes.insert(
            0,
            PropertyChange(
                replacement.PROVIDER_KEY,
                "change",
                _provider_label(old.get("provider")),
                _provider_label(new.get("provider")),
            ),
        )
        if custom:
            keys.insert(0, replacement.PROVIDER_KEY)
    for option in ("protect", "retainOnDelete"):
        if bool(old.get(option)) != bool(new.get(option)):
            changes.append(PropertyChange(option, "change", bool(old.get(option)), bool(new.get(option))))
    if not changes:
        return None
    notes: list[str] = []
    if not custom:
        notes.append("component: the resources inside it decide replace or update")
    elif not keys and replacement.force_new_paths(new["type"]) is None:
        notes.append("replacement not known for this type (infra/replacement.py)")
    op = "replace" if keys else "update"
    if op == "replace":
        notes.extend(_replace_warnings(old, new))
    return ResourceChange(op, new["urn"], new["type"], new["name"], tuple(changes), tuple(keys), tuple(notes))


def _replace_warnings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """A replacement deletes the old resource: refused while it stays protected ("any deployment
    that would delete it (including a replacement) fails with an error",
    https://www.pulumi.com/docs/iac/operations/stack-management/protecting-against-undesired-changes/;
    the engine allows it when the old or the new state is unprotected, pulumi/pulumi#8873)."""
    out = []
    if old.get("protect") and new.get("protect"):
        out.append("PROTECTED: pulumi up refuses to delete it; unprotect it first or keep it where it is")
    if old.get("retainOnDelete"):
        out.append("retained on delete: the old one is left in the cloud")
    return out


def diff_stack(stack: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> StackDiff:
    """Every resource and output change of one stack (``before`` None: a stack new in the head)."""
    result = StackDiff(stack, new_stack=before is None)
    old = {r["urn"]: r for r in (before or {}).get("resources", [])}
    new = {r["urn"]: r for r in after.get("resources", [])}
    for urn in sorted(new.keys() - old.keys()):
        r = new[urn]
        result.resources.append(ResourceChange("create", urn, r["type"], r["name"]))
    for urn in sorted(old.keys() - new.keys()):
        r = old[urn]
        notes = []
        if r.get("protect"):
            notes.append("PROTECTED: pulumi up refuses to delete it")
        if r.get("retainOnDelete"):
            notes.append("retained on delete: removed from the stack, left in the cloud")
        result.resources.append(ResourceChange("delete", urn, r["type"], r["name"], notes=tuple(notes)))
    for urn in sorted(old.keys() & new.keys()):
        change = diff_resource(old[urn], new[urn])
        if change is not None:
            result.resources.append(change)
    if before is not None:
        result.outputs = [c for _, c in compare(before.get("outputs", {}), after.get("outputs", {}))]
    return result


def diff_documents(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[StackDiff]:
    """One :class:`StackDiff` per stack of ``head``, against the same stack in ``base``."""
    return [
        diff_stack(stack, base.get("stacks", {}).get(stack), head["stacks"][stack])
        for stack in sorted(head.get("stacks", {}))
    ]


# ---------------------------------------------------------------------------------------------
# A saved plan as the diff reads it
# ---------------------------------------------------------------------------------------------


class PlanFormatError(ValueError):
    """A saved plan the diff cannot read: every problem, one per line, ``<path>: <what>``."""


_Strict = pydantic.ConfigDict(extra="allow", strict=True)


class _SavedResource(pydantic.BaseModel):
    model_config = _Strict
    urn: str
    type: str
    name: str
    custom: bool = False
    provider: str | dict[str, str] | None = None
    protect: bool = False
    retainOnDelete: bool = False
    ignoreChanges: list[str] = []
    replaceOnChanges: list[str] = []
    inputs: dict[str, Any] = {}


class _SavedStack(pydantic.BaseModel):
    model_config = _Strict
    resources: list[_SavedResource]
    outputs: dict[str, Any] = {}


class _SavedPlan(pydantic.BaseModel):
    model_config = _Strict
    format: int
    stacks: dict[str, _SavedStack]


def check_document(doc: Any) -> None:
    """Refuse a saved plan (``platform plan --json``) whose shape the diff cannot read.

    Checks exactly what :func:`diff_documents` reads: ``{format, stacks: {<stack>: {resources:
    [{urn, type, name, ...}], outputs}}}`` (infra/plan.py ``document``), with pydantic. Raises
    :class:`PlanFormatError` naming each bad path, e.g. ``stacks.prod.resources[3].urn: Field
    required``, or a format other than this checkout's.
    """
    from infra.plan import FORMAT_VERSION

    try:
        saved = _SavedPlan.model_validate(doc)
    except pydantic.ValidationError as exc:
        lines = []
        for error in exc.errors():
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
            lines.append(f"{path or '(the document)'}: {error['msg']}")
        raise PlanFormatError("\n".join(lines)) from None
    if saved.format != FORMAT_VERSION:
        raise PlanFormatError(
            f"format: {saved.format} is not this checkout's plan format {FORMAT_VERSION}; "
            "write the base plan with the same version of platform plan --json"
        )


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def summary(d: StackDiff) -> str:
    if d.new_stack:
        return f"Stack {d.stack}: not in the base plan; {len(d.resources)} to create"
    parts = [f"{d.count(op)} to {op}" for op in ("create", "update", "replace", "delete")]
    text = f"Stack {d.stack}: " + ", ".join(parts)
    if d.outputs:
        text += f"; {len(d.outputs)} output value(s) changed"
    return text


def render_stack(d: StackDiff) -> list[str]:
    """Lines of one stack's diff: the summary, then replacements, deletions, creations, updates.

    Resource lines start with the operation's symbol in column one (a ``diff`` code block
    colours them); resources whose changes are identical are listed under one block of changes.
    """
    lines = [summary(d)]
    if d.new_stack:
        return lines
    groups: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], list[ResourceChange]] = (
        defaultdict(list)
    )
    for r in d.resources:
        rendered = tuple(c.render() for c in r.changes)
        groups[(r.op, r.replace_keys, rendered, r.notes)].append(r)

    def order(key: tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]) -> tuple[int, str]:
        members = groups[key]
        return OP_ORDER.index(key[0]), f"{members[0].type} {members[0].name}"

    for key in sorted(groups, key=order):
        op, keys, rendered, notes = key
        members = sorted(groups[key], key=lambda r: (r.type, r.name))
        symbol = OP_SYMBOL[op]
        why = f" (replace: {', '.join(keys)} changed)" if op == "replace" else ""
        for r in members:
            lines.append(f"{symbol} {r.type}  {r.name}{why if len(members) == 1 else ''}")
        if len(members) > 1 and (rendered or why):
            lines.append(f"    ^ these {len(members)} resources{why}:")
        lines.extend(f"    {line}" for line in rendered)
        lines.extend(f"    ! {note}" for note in notes)
    for c in d.outputs:
        lines.append(f"~ output {c.render()[2:]}")
    return lines


def render(diffs: Sequence[StackDiff], note: str) -> tuple[str, int]:
    """The text of every stack's diff and the number of changes (resources plus outputs)."""
    lines = [f"Offline plan diff. {note}", ""]
    total = 0
    for d in diffs:
        lines.extend(render_stack(d))
        lines.append("")
        total += d.total
    if total == 0:
        lines.append("No changes.")
    return "\n".join(lines).rstrip() + "\n", total
