"""The printed table, and the run-phase rows the scenarios share."""

import statistics
from dataclasses import dataclass, field

from benchmarks.dagster_ops.runs import RunTimes


@dataclass
class Table:
    """The printed figures: (scenario, figure, value, goal, verdict) rows."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, scenario: str, figure: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        self.rows.append((scenario, figure, value, goal, "" if ok is None else ("ok" if ok else "MISSED")))

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows) for i in range(5)]
        last = ""
        for row in self.rows:
            shown = ("" if row[0] == last else row[0], *row[1:])
            last = row[0]
            print("  ".join(cell.ljust(w) for cell, w in zip(shown, widths, strict=True)).rstrip(), flush=True)
        print(
            "*   outside steps: run time not in any step (waits for dyno_source_db pool slots, run set-up)\n"
            "**  median gap between the IO manager's per-partition log lines; executor: mean direct run\n"
            "*** per-run launchMultipleRuns time of the weekly tick scenario (runs not launched here)",
            flush=True,
        )


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s" if values else "-"


def add_run_phases(table: Table, scenario: str, times: list[RunTimes]) -> None:
    table.add(scenario, "run queue (enqueued -> launched)", spread([t.launched - t.enqueued for t in times]))
    table.add(scenario, "worker start-up (launched -> RUN_START)", spread([t.started - t.launched for t in times]))
    table.add(scenario, "run (RUN_START -> RUN_SUCCESS)", spread([t.ended - t.started for t in times]))
