"""tune's progress bar on an 80-column terminal: one line, whatever the title and the best recipe's length."""

from __future__ import annotations

import io

from rich.console import Console

from edgesdk.cli.search import _TuneProgress
from edgesdk.progress import Event


def _lines(progress: _TuneProgress, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    with console.capture() as captured:
        console.print(progress.bar.make_tasks_table(progress.bar.tasks))
    return captured.get().rstrip("\n").split("\n")


def test_the_bar_keeps_to_one_line_at_80_columns():
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    title = "tuning a_model_with_a_rather_long_file_name.keras for cortex-m4 (3200 candidates)"
    progress = _TuneProgress(title, 3200, 24, chosen=None, console=console)
    progress(Event("start", done=0, total=24))
    best = {"recipe": "channels=0.25,sparsegpt=0.75,cluster=16,mixed=int4:0.5,strip", "latency_ms": 0.00412,
            "estimated": True}
    progress(Event("trial", done=7, total=24, detail={"best": best, "row": {"recipe": "int8", "status": "ok"},
                                                     "time_budget_s": 600, "elapsed_s": 42}))
    progress.bar.stop()
    for width in (80, 60):
        lines = _lines(progress, width)
        assert len(lines) == 1 and len(lines[0]) <= width, lines
        assert "7/24" in lines[0] and "…" in lines[0]  # the count is whole; the best recipe is cut, not wrapped
    wide = _lines(progress, 200)[0]
    assert "best channels=0.25,sparsegpt=0.75,cluster=16,mixed=int4:0.5,strip 4.12 µs (est.)" in wide
    assert "558 s of budget left" in wide
    printed = " ".join(console.file.getvalue().split())  # the title wraps at a space on a narrow terminal
    assert title in printed and "trying 24 of the 3200 candidates" in printed
