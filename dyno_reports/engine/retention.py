"""Retention of report history: `reporting.prune_report_runs`, the one path that deletes runs.

Runs and facts are immutable in the database (migration 0003): any UPDATE of a
finished run, any UPDATE of facts and any DELETE or TRUNCATE of either is refused,
except the deletes made inside `reporting.prune_report_runs(keep_latest, dry_run,
only_tenant, only_report)`. It keeps, per (tenant, report type, input fingerprint),
the `keep_latest` newest runs and always the newest SUCCEEDED one; facts go with
their run (ON DELETE CASCADE). This module calls it and summarises the outcome.
"""

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import Engine, text

from dyno_reports.engine.run_request import parse_tenant_id
from dyno_reports.reports import get_report


@dataclass
class PruneSummary:
    dry_run: bool
    keep_latest: int
    runs: Counter[str] = field(default_factory=Counter)  # per report type
    facts: Counter[str] = field(default_factory=Counter)
    run_ids: list[UUID] = field(default_factory=list)

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())

    def lines(self) -> list[str]:
        """What `dyno-reports runs prune` prints."""
        verb = "would delete" if self.dry_run else "deleted"
        out = [
            f"{report_type}: {verb} {self.runs[report_type]} run(s), {self.facts[report_type]} fact row(s)"
            for report_type in sorted(self.runs)
        ]
        total = f"{verb} {self.total_runs} run(s) in all (keeping the {self.keep_latest} latest per input fingerprint"
        out.append(total + " and the latest SUCCEEDED one)")
        if self.dry_run:
            out.append("dry run: nothing was deleted")
        return out


def prune(
    engine: Engine,
    keep_latest: int,
    *,
    dry_run: bool,
    tenant_id: str | UUID | None = None,
    report_type: str | None = None,
) -> PruneSummary:
    """Call reporting.prune_report_runs in one transaction; unknown report or malformed tenant: InputError."""
    tenant = parse_tenant_id(tenant_id) if tenant_id is not None else None
    if report_type is not None:
        get_report(report_type)
    summary = PruneSummary(dry_run=dry_run, keep_latest=keep_latest)
    with engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, report_type, fact_rows FROM reporting.prune_report_runs("
                "CAST(:keep AS integer), CAST(:dry AS boolean), CAST(:tenant AS uuid), CAST(:report AS text))"
            ),
            {"keep": keep_latest, "dry": dry_run, "tenant": tenant, "report": report_type},
        )
        for run_id, kind, fact_rows in rows:
            summary.runs[kind] += 1
            summary.facts[kind] += fact_rows
            summary.run_ids.append(run_id)
    return summary
