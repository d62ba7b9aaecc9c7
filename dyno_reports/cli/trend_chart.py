"""`dyno-reports trend --png`: the trend as a line chart, one line per group, gaps where a period has no run.

matplotlib with the Agg backend (no display needed); imported only when a chart is asked for.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, time

from dyno_reports.core.errors import InputError
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.read.trend import TrendPoint
from dyno_reports.reports.base import ReportDefinition

MAX_LINES = 20
MAX_TICKS = 16
CADENCE_AXIS = {"week": "week from", "month": "month", "quarter": "fiscal quarter, from its first month"}


def draw_trend(
    path: str,
    report: ReportDefinition,
    metric: str,
    tenant_name: str,
    by: tuple[str, ...],
    points: list[TrendPoint],
    calendar: TenantCalendar,
    cadence: str,
) -> None:
    """Write the chart to `path` (PNG), periods placed at their first local day; InputError when it cannot be
    written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def local_start(point: TrendPoint) -> datetime:
        return datetime.combine(calendar.local_date(point.period_start), time())

    series = _series(by, points, local_start)
    figure, axes = plt.subplots(figsize=(10, 5.5), dpi=110)
    try:
        for label, (starts, values) in list(series.items())[:MAX_LINES]:
            axes.plot(starts, values, marker="o", linewidth=1.8, label=label)  # NaN: a gap in the line
        missing = sorted({local_start(p) for p in points if p.run_id is None})
        for start in missing:
            axes.axvline(mdates.date2num(start), color="0.85", linestyle=":", linewidth=1, zorder=0)
        by_text = f" by {', '.join(by)}" if by else ""
        axes.set_title(f"{report.title}: {metric}{by_text}\n{tenant_name}", fontsize=12)
        axes.set_xlabel(f"{CADENCE_AXIS[cadence]} ({calendar.time_zone})" + ("; dotted: no run" if missing else ""))
        axes.set_ylabel(metric)
        axes.grid(True, alpha=0.3)
        starts = sorted({local_start(p) for p in points})
        if len(starts) <= MAX_TICKS:  # a tick on each period start; more would crowd, so the locator picks
            axes.set_xticks([mdates.date2num(start) for start in starts])
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d" if cadence == "week" else "%Y-%m"))
        figure.autofmt_xdate()
        shown = len(series) if len(series) <= MAX_LINES else f"first {MAX_LINES} of {len(series)}"
        axes.legend(title=f"{shown} line(s)", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        figure.tight_layout()
        try:
            figure.savefig(path, format="png")
        except OSError as exc:
            raise InputError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


def _series(
    by: tuple[str, ...], points: list[TrendPoint], local_start: Callable[[TrendPoint], datetime]
) -> dict[str, tuple[list, list]]:
    """Legend label -> (period starts, values as floats with NaN where there is no value), in the points' order."""
    series: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for point in points:
        label = " / ".join(point.group_labels()) if by else "total"
        starts, values = series[label]
        starts.append(local_start(point))
        values.append(float("nan") if point.value is None else float(point.value))
    return dict(series)
