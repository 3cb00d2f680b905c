"""Which imported condition is the hidden reference, which are anchors, and which screening rule applies.

Declared beats found: the command line (--reference, --anchor, --mid-anchor, --screening) first,
then the map file, then what the file itself says (a long table's `kind` column), then the names
its tool gives them (webMUSHRA: reference, anchor35, anchor70; BeaqleJS: Reference; evalkit:
reference, anchor-lp35, anchor-lp70). A declared name may be the file's or the new one. The rule
defaults to BS.1534-3's two rules; when a role it needs cannot be found, the import asks for it
instead of screening less than it says.
"""

from __future__ import annotations

from ...errors import ConfigError
from ..screening import ScreeningConfig
from .mapping import NONE, ImportMap
from .readers import Rating, Reading

__all__ = ["resolve_roles", "DEFAULT_NAMES"]

DEFAULT_NAMES = {  # format -> (reference names, anchor names, mid anchor names), first found wins
    "webmushra": (("reference",), ("anchor35", "anchor70"), ("anchor70",)),
    "beaqlejs": (("Reference",), (), ()),
    "long": (("reference",), ("anchor-lp35", "anchor-lp70", "anchor35", "anchor70"), ("anchor-lp70", "anchor70")),
}
_ASK = "declare it: `{key}:` in the --map file, or {flag}"


def resolve_roles(
    fmt: str, ratings: list[Rating], reading: Reading, mapping: ImportMap, overrides: dict
) -> tuple[ScreeningConfig | None, dict[str, str], list[str]]:
    """(screening config, condition -> kind, problems)."""
    conditions = sorted({r.condition for r in ratings})
    problems: list[str] = []
    resolve = _Resolver(conditions, mapping, problems)
    found = {r.condition: r.kind for r in ratings if r.kind}
    names = DEFAULT_NAMES[fmt]
    declared_reference = overrides["reference"] or mapping.reference
    if declared_reference == NONE:
        reference = None
    elif declared_reference:
        reference = resolve(declared_reference, "hidden reference")
    else:
        reference = _found(conditions, found, "reference", names[0], resolve)
    declared_anchors = overrides["anchors"] or mapping.anchors
    anchors = (
        [a for a in (resolve(name, "anchor") for name in declared_anchors) if a]
        if declared_anchors is not None
        else _all_found(conditions, found, "anchor", names[1], resolve)
    )
    declared_mid = overrides["mid_anchor"] or mapping.mid_anchor
    mid = resolve(declared_mid, "mid anchor") if declared_mid else _default_mid(anchors, names[2], resolve)
    if mid and mid not in anchors:
        anchors.append(mid)
    if reference and reference in anchors:
        problems.append(f"condition {reference!r} is declared both the hidden reference and an anchor")
    rule = overrides["screening"] or mapping.screening or "bs1534-3"
    config = _config(rule, reference, anchors, mid, declared_reference == NONE, problems)
    kinds = {c: _kind(c, reference, anchors, mapping) for c in conditions}
    return config, kinds, problems


class _Resolver:
    """A declared name -> the condition's evalkit name; a problem when there is no such condition."""

    def __init__(self, conditions: list[str], mapping: ImportMap, problems: list[str]):
        self.conditions, self.mapping, self.problems = set(conditions), mapping, problems
        self.listed = ", ".join(conditions) or "none"

    def __call__(self, name: str, role: str, quiet: bool = False) -> str | None:
        if name in self.conditions:
            return name
        mapped = self.mapping.conditions.get(name)
        if mapped is not None and mapped.name in self.conditions:
            return mapped.name
        if not quiet:
            self.problems.append(f"the {role} {name!r} is not a condition of this file (conditions: {self.listed})")
        return None


def _found(conditions, found, kind, names, resolve) -> str | None:
    marked = [c for c in conditions if found.get(c) == kind]
    if marked:
        return marked[0]
    return next((c for c in (resolve(n, kind, quiet=True) for n in names) if c), None)


def _all_found(conditions, found, kind, names, resolve) -> list[str]:
    marked = [c for c in conditions if found.get(c) == kind]
    return marked or [c for c in (resolve(n, kind, quiet=True) for n in names) if c]


def _default_mid(anchors: list[str], names, resolve) -> str | None:
    named = next((c for c in (resolve(n, "mid anchor", quiet=True) for n in names) if c in anchors), None)
    return named or (anchors[0] if len(anchors) == 1 else None)


def _config(
    rule: str, reference: str | None, anchors: list[str], mid: str | None, no_reference: bool, problems: list[str]
) -> ScreeningConfig | None:
    if rule != "none" and reference is None and not no_reference and not any("hidden reference" in p for p in problems):
        problems.append(
            "screening needs the hidden reference, which this file does not name the usual way: "
            + _ASK.format(key="reference", flag="--reference NAME (or `reference: none` with --screening none)")
        )
        return None
    if rule == "bs1534-3" and reference and mid is None and not any("mid anchor" in p for p in problems):
        problems.append(
            "BS.1534-3 screening needs the mid anchor: "
            + _ASK.format(
                key="mid_anchor",
                flag=("--mid-anchor NAME; or choose --screening reference (hidden reference only) or --screening none"),
            )
        )
        return None
    try:
        return ScreeningConfig(rule, reference, tuple(anchors), mid)
    except ConfigError as err:
        problems.append(str(err))
        return None


def _kind(condition: str, reference: str | None, anchors: list[str], mapping: ImportMap) -> str:
    if condition == reference:
        return "reference"
    if condition in anchors:
        return "anchor"
    decoded = any(m is not None and m.name == condition and m.decoded for m in mapping.conditions.values())
    return "file" if decoded else "codec"
