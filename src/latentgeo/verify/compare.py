"""Comparing one result file with its reference: every value, judged against the tolerance file.

A result file is reduced to *leaves*: for JSON, every scalar at its dotted path (list items by
index: ``log_history.3.loss``); for CSV, every cell, named by its column and identified by its row
(the row's identifying columns, see :func:`csv_leaves`). Two files are then compared leaf by
leaf:

* a leaf on one side only (a key, list item, column or row the other lacks) is a structural
  difference: out, whatever the tolerances;
* equal values (both missing/NaN counts as equal) are identical;
* two numbers that differ pass when a tolerance rule covers that leaf and the change is within it;
  text, or a number no rule covers, must be identical.

The outcome is a :class:`FileVerdict`: identical, within tolerance (with the change closest to its
tolerance), or out (with the worst changes and the rule each broke).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

from latentgeo.verify.tolerances import ToleranceFile, ToleranceRule

IDENTICAL, WITHIN, OUT = "identical", "within tolerance", "OUT of tolerance"
MISSING = object()  # a leaf the other side lacks


class UnreadableResult(ValueError):
    """A result file that cannot be parsed as its kind (JSON or CSV)."""


@dataclass(frozen=True)
class Leaf:
    """One value of a result file: ``key`` is what tolerance rules match (a JSON dotted path or a
    CSV column), ``row`` a CSV cell's row label (None in JSON), ``where`` what a message shows."""

    key: str
    where: str
    value: object
    row: str | None = None


# ----------------------------------------------------------------------------------- parsing


def _number(text: str):
    """A CSV cell as a float when it reads as one (empty: NaN), else the text itself."""
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def json_leaves(obj, prefix: str = "") -> dict[str, Leaf]:
    """Every scalar of a parsed JSON document by dotted path; an empty object or list is a leaf
    of its own, so that {} and [] still differ from a missing key."""
    out: dict[str, Leaf] = {}

    def walk(node, path: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list) and node:
            for i, v in enumerate(node):
                walk(v, f"{path}.{i}" if path else str(i))
        else:
            value = node if not isinstance(node, (dict, list)) else type(node)()
            out[path] = Leaf(path, path or "(document)", value)

    walk(obj, prefix)
    return out


def parse_json(text: str) -> dict[str, Leaf]:
    try:
        return json_leaves(json.loads(text))
    except json.JSONDecodeError as err:
        raise UnreadableResult(f"not valid JSON ({err})") from None


@dataclass(frozen=True)
class Table:
    """A CSV file: its columns in order and its rows as lists of parsed cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]


def parse_csv(text: str) -> Table:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableResult("empty CSV file (no header)") from None
    rows = []
    for lineno, row in enumerate(reader, 2):
        if not row:
            continue
        if len(row) != len(header):
            raise UnreadableResult(f"line {lineno} has {len(row)} cells, the header {len(header)}")
        rows.append(tuple(_number(cell) for cell in row))
    if len(set(header)) != len(header):
        raise UnreadableResult(f"repeated column names in the header: {header}")
    return Table(tuple(header), tuple(rows))


def text_columns(table: Table) -> tuple[str, ...]:
    """Columns holding text in some row: what names a row when the tolerance file does not say."""
    return tuple(c for j, c in enumerate(table.columns) if any(isinstance(r[j], str) for r in table.rows))


def csv_leaves(table: Table, id_columns: tuple[str, ...]) -> dict[str, Leaf]:
    """Every cell of a table, keyed by (row identity, column). A row's identity is its values in
    ``id_columns``; rows sharing one are told apart by their order (#2, #3, ...), so a table
    sorted by a value that may move (e.g. by r) still pairs the same rows."""
    index = [table.columns.index(c) for c in id_columns]
    seen: dict[tuple, int] = {}
    out: dict[str, Leaf] = {}
    for n, row in enumerate(table.rows, 1):
        ident = tuple(row[j] for j in index)
        seen[ident] = seen.get(ident, 0) + 1
        label = " / ".join(v if isinstance(v, str) else _show(v) for v in ident) if ident else f"row {n}"
        if seen[ident] > 1:
            label += f" #{seen[ident]}"
        for column, value in zip(table.columns, row):
            out[f"{label}\x00{column}"] = Leaf(column, f"{column} [{label}]", value, label)
    return out


# ------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Change:
    """A leaf whose value differs. ``rule`` is the tolerance that applied (None: none did, so any
    change is out); ``ratio`` = |Δ| / allowed (inf without a rule or for text and structure)."""

    where: str
    old: object
    new: object
    rule: ToleranceRule | None
    ratio: float

    @property
    def delta(self) -> float | None:
        if _is_number(self.old) and _is_number(self.new):
            return float(self.new) - float(self.old)
        return None

    @property
    def out(self) -> bool:
        return self.ratio > 1.0

    def describe(self) -> str:
        if self.old is MISSING:
            return f"{self.where}: only in the workspace"
        if self.new is MISSING:
            return f"{self.where}: missing from the workspace"
        text = f"{self.where} {_show(self.old)} → {_show(self.new)}"
        delta = self.delta
        if delta is None or math.isnan(delta):
            return text + " (must be identical)"
        rel = f", rel {delta / abs(float(self.old)):+.2g}" if float(self.old) != 0 else ""
        text += f" (Δ {delta:+.3g}{rel}"
        if self.rule is None:
            return text + "; no tolerance: must be identical)"
        return text + f"; {self.ratio:.0%} of tolerance {self.rule.describe()})"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_missing_number(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _show(value) -> str:
    if value is MISSING:
        return "(absent)"
    if isinstance(value, float):
        return f"{value:.7g}"
    return repr(value) if isinstance(value, str) else str(value)


def judge_leaf(old: object, new: object, rule: ToleranceRule | None) -> float:
    """0 for identical values; otherwise |Δ| / allowed under ``rule`` (inf when nothing allows it).
    JSON null and CSV's empty cell (NaN) both mean "no value" and are equal to each other."""
    if _is_missing_number(old) and _is_missing_number(new):
        return 0.0
    if _is_number(old) and _is_number(new) and not (_is_missing_number(old) or _is_missing_number(new)):
        delta = abs(float(new) - float(old))
        if delta == 0:
            return 0.0
        if rule is None:
            return math.inf
        allowed = rule.allowed(float(old))
        return delta / allowed if allowed > 0 else math.inf
    return 0.0 if (type(old) is type(new) and old == new) else math.inf


@dataclass
class FileVerdict:
    """The verdict on one result file. ``status`` is IDENTICAL, WITHIN or OUT; ``changes`` holds
    every changed leaf (out ones included); ``problem`` a file-level reason (missing, unreadable,
    different columns or rows)."""

    path: str
    status: str
    changes: list[Change] = field(default_factory=list)
    problem: str = ""
    compared: int = 0

    @property
    def out_changes(self) -> list[Change]:
        return sorted((c for c in self.changes if c.out), key=lambda c: -c.ratio)

    def describe(self, limit: int = 3) -> str:
        """One line: the verdict and, for a change, by how much and against which tolerance."""
        if self.status == IDENTICAL:
            return f"{IDENTICAL:<17} {self.path}"
        if self.status == WITHIN:
            closest = max(self.changes, key=lambda c: c.ratio)
            return (f"{WITHIN:<17} {self.path}: {len(self.changes)} of {self.compared} values changed; "
                    f"closest to its tolerance: {closest.describe()}")
        bad = self.out_changes
        parts = [self.problem] if self.problem else []
        if bad:
            shown = "; ".join(c.describe() for c in bad[:limit])
            more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
            parts.append(f"{len(bad)} of {self.compared} values out: {shown}{more}")
        return f"{OUT:<17} {self.path}: " + "; ".join(parts)


def compare_leaves(path: str, old: dict[str, Leaf], new: dict[str, Leaf], tol: ToleranceFile) -> FileVerdict:
    """Judge every leaf of one file (``old``: reference, ``new``: workspace)."""
    changes: list[Change] = []
    compared = 0
    for name in list(old) + [n for n in new if n not in old]:
        a, b = old.get(name), new.get(name)
        leaf = a or b
        if a is not None and b is not None and tol.ignored(path, leaf.key, leaf.row):
            continue  # an ignored value is not compared; its presence on both sides still is
        compared += 1
        if a is None or b is None:
            changes.append(Change(leaf.where, MISSING if a is None else a.value,
                                  MISSING if b is None else b.value, None, math.inf))
            continue
        rule = tol.rule_for(path, leaf.key, leaf.row)
        ratio = judge_leaf(a.value, b.value, rule)
        if ratio > 0:
            changes.append(Change(leaf.where, a.value, b.value, rule, ratio))
    status = IDENTICAL if not changes else (OUT if any(c.out for c in changes) else WITHIN)
    return FileVerdict(path, status, changes, compared=compared)


def _set_difference(kind: str, ref: list, new: list) -> str:
    only_ref = [x for x in ref if x not in new]
    only_new = [x for x in new if x not in ref]
    parts = []
    if only_ref:
        parts.append(f"missing from the workspace: {', '.join(map(str, only_ref[:5]))}"
                     + (f" (+{len(only_ref) - 5})" if len(only_ref) > 5 else ""))
    if only_new:
        parts.append(f"only in the workspace: {', '.join(map(str, only_new[:5]))}"
                     + (f" (+{len(only_new) - 5})" if len(only_new) > 5 else ""))
    return f"{kind} differ ({'; '.join(parts)})"


def _parse_both(parse, old_text: str, new_text: str):
    """Parse both copies, saying which one cannot be read."""
    parsed = []
    for side, text in (("reference", old_text), ("workspace", new_text)):
        try:
            parsed.append(parse(text))
        except UnreadableResult as err:
            raise UnreadableResult(f"the {side} copy is {err}" if str(err).startswith("not ")
                                   else f"the {side} copy: {err}") from None
    return parsed


def compare_csv(path: str, old_text: str, new_text: str, tol: ToleranceFile) -> FileVerdict:
    old, new = _parse_both(parse_csv, old_text, new_text)
    problems = []
    if set(old.columns) != set(new.columns):
        problems.append(_set_difference("columns", list(old.columns), list(new.columns)))
    id_columns = tol.row_id_columns(path) or text_columns(old)
    lacking = [c for c in id_columns if c not in old.columns or c not in new.columns]
    if lacking:
        problems.append(f"row-identifying columns {lacking} absent")
        id_columns = ()
    old_leaves, new_leaves = csv_leaves(old, id_columns), csv_leaves(new, id_columns)
    old_rows = list(dict.fromkeys(leaf.row for leaf in old_leaves.values()))
    new_rows = list(dict.fromkeys(leaf.row for leaf in new_leaves.values()))
    if set(old_rows) != set(new_rows):
        problems.append(_set_difference("rows", old_rows, new_rows))
    if problems:
        # A different row or column set is out whatever the values; still count what compares.
        verdict = compare_leaves(path, old_leaves, new_leaves, tol)
        verdict.changes = [c for c in verdict.changes if c.old is not MISSING and c.new is not MISSING]
        verdict.status, verdict.problem = OUT, "; ".join(problems)
        return verdict
    return compare_leaves(path, old_leaves, new_leaves, tol)


def compare_json(path: str, old_text: str, new_text: str, tol: ToleranceFile) -> FileVerdict:
    return compare_leaves(path, *_parse_both(parse_json, old_text, new_text), tol)


def compare_result(path: str, old_text: str | None, new_text: str | None, tol: ToleranceFile) -> FileVerdict:
    """The verdict on one result file; ``None`` for a side that lacks it."""
    if old_text is None:
        return FileVerdict(path, OUT, problem="not in the reference (a result only in the workspace)")
    if new_text is None:
        return FileVerdict(path, OUT, problem="missing from the workspace")
    compare = compare_csv if path.endswith(".csv") else compare_json
    try:
        return compare(path, old_text, new_text, tol)
    except UnreadableResult as err:
        return FileVerdict(path, OUT, problem=f"cannot be read: {err}")
