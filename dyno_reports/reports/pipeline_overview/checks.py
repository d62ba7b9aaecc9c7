"""pipeline_overview's own fact check: a SUCCEEDED run has a row for every stage in its scope."""

from sqlalchemy import Text, and_, cast, func, not_, or_, select, true
from sqlalchemy.sql import Select

from dyno_reports.reports.fact_checks import FactCheck, runs_of
from dyno_reports.storage.tables import pipeline_overview_fact, report_run, stage


def stages_missing_from_overview(dagster_run_id: str) -> Select:
    """Stages in a SUCCEEDED pipeline_overview run's scope (its options) that have no fact row."""
    runs = runs_of(dagster_run_id, "pipeline_overview").where(report_run.c.status == "SUCCEEDED").subquery()
    options = runs.c.input_params["options"]
    include_closed = func.coalesce(options["include_closed"].as_boolean(), False)
    pipeline_ids = options["pipeline_ids"]
    in_scope = and_(
        or_(include_closed, stage.c.kind == "open"),
        or_(
            func.jsonb_typeof(pipeline_ids).is_distinct_from("array"),
            pipeline_ids.has_key(cast(stage.c.pipeline_id, Text)),
        ),
    )
    has_row = (
        select(true())
        .where(
            pipeline_overview_fact.c.run_id == runs.c.run_id,
            pipeline_overview_fact.c.tenant_id == runs.c.tenant_id,
            pipeline_overview_fact.c.stage_id == stage.c.stage_id,
        )
        .exists()
    )
    return (
        select(func.count())
        .select_from(runs.join(stage, stage.c.tenant_id == runs.c.tenant_id))
        .where(in_scope, not_(has_row))
    )


STAGE_ROWS_COMPLETE = FactCheck(
    "stage_rows_complete",
    "each SUCCEEDED run of this Dagster run has a row for every stage in its scope",
    "stages missing from the runs' facts",
    stages_missing_from_overview,
    warn_only=True,
)
