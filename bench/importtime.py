"""Reading ``python -X importtime`` output: who costs what, and who pulled it in."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

# Top-level names that are the gateway's own code.
OWN = ("wa_gateway", "app", "functions")
MARKER = "#bench:"


@dataclass
class Node:
    name: str
    self_us: int
    cumulative_us: int
    depth: int
    phase: str
    children: list[Node] = field(default_factory=list)

    @property
    def package(self) -> str:
        return self.name.split(".", 1)[0]


def parse(text: str) -> list[Node]:
    """The import tree (roots in order). Lines after a ``#bench:`` marker get its phase."""
    pending: dict[int, list[Node]] = {}
    phase = "init"
    roots: list[Node] = []
    for line in text.splitlines():
        if line.startswith(MARKER):
            phase = line[len(MARKER) :].strip() or phase
            continue
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        label = parts[2].rstrip()
        depth = (len(label) - len(label.lstrip(" ")) - 1) // 2
        node = Node(label.strip(), int(parts[0]), int(parts[1]), depth, phase)
        node.children = pending.pop(depth + 1, [])
        if depth == 0:
            roots.append(node)
        else:
            pending.setdefault(depth, []).append(node)
    return roots


def walk(nodes: list[Node]) -> list[tuple[Node, Node | None]]:
    """Every node with its parent (None for roots), depth first."""
    out: list[tuple[Node, Node | None]] = []
    stack: list[tuple[Node, Node | None]] = [(n, None) for n in reversed(nodes)]
    while stack:
        node, parent = stack.pop()
        out.append((node, parent))
        stack.extend((child, node) for child in reversed(node.children))
    return out


def _is_own(name: str) -> bool:
    return name.split(".", 1)[0] in OWN


def by_package(roots: list[Node]) -> list[tuple[str, float, int]]:
    """(top-level package, self ms summed over its modules, module count), costliest first."""
    totals: dict[str, list[float]] = {}
    for node, _ in walk(roots):
        entry = totals.setdefault(node.package, [0.0, 0])
        entry[0] += node.self_us / 1000
        entry[1] += 1
    rows = [(name, round(ms, 1), int(count)) for name, (ms, count) in totals.items()]
    return sorted(rows, key=lambda row: -row[1])


def triggers(roots: list[Node], root_label: str) -> list[tuple[str, str, float, str]]:
    """Imports of other packages made directly by the gateway's code (or, for a root, by the
    request path): (importer, imported, cumulative ms, phase), costliest first."""
    rows = []
    for node, parent in walk(roots):
        if _is_own(node.name):
            continue
        if parent is None:
            rows.append(("(first request)" if node.phase != "init" else root_label, node))
        elif _is_own(parent.name):
            rows.append((parent.name, node))
    out = [(who, n.name, round(n.cumulative_us / 1000, 1), n.phase) for who, n in rows]
    return sorted(out, key=lambda row: -row[2])


def phase_totals(roots: list[Node]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for root in roots:
        totals[root.phase] = totals.get(root.phase, 0.0) + root.cumulative_us / 1000
    return {k: round(v, 1) for k, v in totals.items()}


def kind(package: str) -> str:
    if package in OWN:
        return "gateway"
    return "stdlib" if package in sys.stdlib_module_names else "third-party"


def report(
    title: str, text: str, *, root_label: str = "app.py", top: int = 15
) -> tuple[str, dict[str, object]]:
    """A readable report (followed by the raw output) and its summary for the JSON."""
    roots = parse(text)
    packages = by_package(roots)
    edges = triggers(roots, root_label)
    phases = phase_totals(roots)
    lines = [
        f"python -X importtime: {title}",
        "",
        "Import time by phase (ms): " + ", ".join(f"{phase} {ms}" for phase, ms in phases.items()),
        "",
        f"Top {top} packages by import time (self time of all their modules, ms):",
    ]
    for name, ms, count in packages[:top]:
        lines.append(f"  {ms:8.1f}  {name:<32} {kind(name):<12} {count} modules")
    lines += ["", f"Top {top} imports triggered by the gateway's code (cumulative ms):"]
    for who, what, ms, phase in edges[:top]:
        lines.append(f"  {ms:8.1f}  {who} -> {what}  [{phase}]")
    lines += ["", "Raw output:", text]
    summary: dict[str, object] = {
        "phases_ms": phases,
        "top_packages_ms": {name: ms for name, ms, _ in packages[:top]},
        "top_triggers_ms": [
            {"importer": who, "imported": what, "ms": ms, "phase": phase}
            for who, what, ms, phase in edges[:top]
        ],
    }
    return "\n".join(lines), summary
