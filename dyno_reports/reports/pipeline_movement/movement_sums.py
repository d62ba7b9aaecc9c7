"""pipeline_movement's sums of the counted pairs per pipeline (`movements`: side, pipeline_id, start_kind, end_kind,
end_pipeline_id, amount_change, deals, start_amount, end_amount): the select list both its statements group by."""

MOVEMENT_SUMS = """           sum(deals) FILTER (WHERE side = 'S') AS start_count,
           sum(start_amount) FILTER (WHERE side = 'S') AS start_amount,
           sum(deals) FILTER (WHERE side = 'E' AND start_kind IS NULL) AS created_count,
           sum(end_amount) FILTER (WHERE side = 'E' AND start_kind IS NULL) AS created_amount,
           sum(deals) FILTER (WHERE side = 'E' AND start_kind IN ('won', 'lost')) AS reopened_count,
           sum(end_amount) FILTER (WHERE side = 'E' AND start_kind IN ('won', 'lost')) AS reopened_amount,
           sum(deals) FILTER (WHERE side = 'E' AND start_kind = 'open') AS moved_in_count,
           sum(end_amount) FILTER (WHERE side = 'E' AND start_kind = 'open') AS moved_in_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_pipeline_id = pipeline_id
                                    AND amount_change > 0) AS increased_count,
           sum(end_amount - start_amount) FILTER (WHERE side = 'S' AND end_pipeline_id = pipeline_id
                                                  AND amount_change > 0) AS increased_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_pipeline_id = pipeline_id
                                    AND amount_change < 0) AS decreased_count,
           sum(start_amount - end_amount) FILTER (WHERE side = 'S' AND end_pipeline_id = pipeline_id
                                                  AND amount_change < 0) AS decreased_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_pipeline_id <> pipeline_id) AS moved_out_count,
           sum(start_amount) FILTER (WHERE side = 'S' AND end_pipeline_id <> pipeline_id) AS moved_out_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_kind = 'won') AS won_count,
           sum(start_amount) FILTER (WHERE side = 'S' AND end_kind = 'won') AS won_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_kind = 'lost') AS lost_count,
           sum(start_amount) FILTER (WHERE side = 'S' AND end_kind = 'lost') AS lost_amount,
           sum(deals) FILTER (WHERE side = 'S' AND end_kind IS NULL) AS deleted_count,
           sum(start_amount) FILTER (WHERE side = 'S' AND end_kind IS NULL) AS deleted_amount,
           sum(deals) FILTER (WHERE end_pipeline_id = pipeline_id) AS end_count,
           sum(end_amount) FILTER (WHERE end_pipeline_id = pipeline_id) AS end_amount"""
