"""The layer stays in small modules: each one a concern a reader can hold at once."""

from __future__ import annotations

from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "shared" / "wa_gateway"
MAX_LINES = 300


def test_every_layer_module_is_under_300_lines() -> None:
    sizes = {
        str(path.relative_to(LAYER)): len(path.read_text(encoding="utf-8").splitlines())
        for path in LAYER.rglob("*.py")
    }
    assert len(sizes) > 50  # the layer was found
    assert {name: n for name, n in sizes.items() if n >= MAX_LINES} == {}
