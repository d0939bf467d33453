"""The shape of the code, checked: no import cycles, no module over 400 lines (import-linter checks the
layers in CI, `lint-imports`)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_LINES = 400


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*ROOT.glob("edgesdk/**/*.py"), *ROOT.glob("device_agent/*.py")]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (requirements-dev.txt)")
    graph = grimp.build_graph("edgesdk", "device_agent")
    ours = [m for m in graph.modules if m.split(".")[0] in ("edgesdk", "device_agent")]
    cycles = []
    for module in ours:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported == module or imported not in ours or imported.startswith(module + "."):
                continue  # a package's __init__ importing its own modules is not a cycle
            if graph.find_shortest_chain(importer=imported, imported=module):
                cycles.append(f"{module} <-> {imported}")
    assert not cycles, "import cycles: " + ", ".join(sorted(set(cycles)))
