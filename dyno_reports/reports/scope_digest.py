"""The scope digest: sha256 of the tenant's pipelines and stages a run's question covers, as the run read them.

A run reads the tenant's stages as they are at run time (docs/definitions.md, "As known at"), so its header
records what they were: `report_run.scope_digest`, computed by SCOPE_DIGEST in the run's own statement (same
snapshot as its facts, no round trip of its own). The canonical form, documented in docs/definitions.md
("The scope digest") so that a check can recompute it in SQL:

- one line per pipeline in scope, `pipeline,<pipeline_id>`, and one per stage of those pipelines,
  `stage,<stage_id>,<pipeline_id>,<position>,<probability>,<kind>`; names are left out (a rename changes
  no result);
- in scope: the run's `pipeline_ids`, or every pipeline of the tenant when it has none;
- ids in their canonical lowercase form, `position` as an integer, `probability` with 4 decimals
  (`0.2500`, `1.0000`), each line ended by a newline (`\\n`);
- the lines sorted bytewise (COLLATE "C") and concatenated; the digest is the lowercase hex sha256 of that
  UTF-8 text (of the empty text when nothing is in scope).

Bound parameters: `tenant_id`, `pipeline_ids` (NULL = every pipeline of the tenant), as in every report.
"""

IN_SCOPE = "(CAST(:pipeline_ids AS uuid[]) IS NULL OR {alias}.pipeline_id = ANY (CAST(:pipeline_ids AS uuid[])))"

SCOPE_DIGEST = f"""SELECT encode(sha256(convert_to(
           COALESCE(string_agg(scope_lines.line, '' ORDER BY scope_lines.line COLLATE "C"), ''), 'UTF8')), 'hex')
FROM (
    SELECT concat_ws(',', 'pipeline', p.pipeline_id) || E'\\n' AS line
    FROM crm.pipeline p
    WHERE p.tenant_id = :tenant_id AND {IN_SCOPE.format(alias="p")}
    UNION ALL
    SELECT concat_ws(',', 'stage', s.stage_id, s.pipeline_id, s.position, CAST(s.probability AS numeric(5, 4)),
                     s.kind) || E'\\n'
    FROM crm.stage s
    WHERE s.tenant_id = :tenant_id AND {IN_SCOPE.format(alias="s")}
) scope_lines"""
