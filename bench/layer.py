"""The built layer's size, unzipped (``make sam-build`` builds ``.aws-sam/build/GatewayLayer``),
summed as deploy.mk's ``layer-size`` sums it, with the largest packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / ".aws-sam" / "build" / "GatewayLayer"
MB = 1048576


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure(top: int = 12) -> dict[str, Any]:
    if not LAYER.is_dir():
        return {"layer_mb": None, "note": "no .aws-sam/build/GatewayLayer: run `make sam-build`"}
    total = _size(LAYER)
    python = LAYER / "python"
    groups: dict[str, int] = {}
    for entry in python.iterdir() if python.is_dir() else []:
        name = entry.name.split("-", 1)[0] if entry.name.endswith(".dist-info") else entry.name
        name = name.removesuffix(".libs").split(".", 1)[0].lower()
        groups[name] = groups.get(name, 0) + _size(entry)
    largest = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    return {
        "layer_mb": round(total / MB, 1),
        "largest_mb": {name: round(size / MB, 2) for name, size in largest},
    }
