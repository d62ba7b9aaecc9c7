"""Input hardening of `dyno-reports run`: whatever the input, one `error:` line and exit 2 with nothing written,
or a run recorded as it should be.

The command runs in-process (`cli.main` with click's isolation of stdin, stdout,
stderr and the environment), against this module's migrated database: the
property tests below run many examples in a few seconds. The subprocess forms
(stdin, `@file`, the 9999 window, a 100 KB tenant id) are in test_cli.py.
"""

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from dyno_reports.cli import main as cli
from dyno_reports.core import periods
from dyno_reports.core.errors import InputError, one_line, shown
from dyno_reports.core.tenant_calendar import TenantCalendar
from dyno_reports.dagster_defs.run_config import options_of, report_config_class
from dyno_reports.engine.run_request import (
    NUMBER_MAX_DIGITS,
    OPTIONS_MAX_BYTES,
    OPTIONS_MAX_DEPTH,
    options_dict,
    parse_options_json,
    parse_tenant_id,
)
from dyno_reports.reports import get_report, registry
from dyno_reports.reports.options import parse_options
from dyno_reports.storage.tables import report_run
from dyno_reports_tests.support.history import DEAL_IDS, PIPELINE_IDS, T0, TenantData, load

UTC_CALENDAR = TenantCalendar()  # the tenants here have the default calendar
LINE_LIMIT = 500  # what an error line may hold, input quoted in it included (errors.ERROR_LINE_LIMIT)
CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# Digits that str.isdigit() and int() (and so uuid.UUID) take for ASCII ones.
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def invoke(database_url):
    """`dyno-reports ARGS` in this process, with main()'s error handling, on this module's database."""
    env = {"DYNO_DATABASE_URL": database_url.render_as_string(hide_password=False), "DYNO_DEBUG": None}

    def run(*args: str, stdin: bytes | None = None) -> Outcome:
        with CliRunner().isolation(input=stdin, env=env) as (out, err, _):
            try:
                cli.main(list(args))
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            return Outcome(status, out.getvalue().decode(), err.getvalue().decode())

    return run


@pytest.fixture(scope="module")
def tenants(engine) -> tuple[TenantData, TenantData]:
    """Mine: one pipeline with history at the edges of the supported range too; other: another pipeline."""
    mine, other = TenantData(), TenantData()
    lead, won = mine.add_pipeline(PIPELINE_IDS[0], ["open", "won"])
    mine.add_deal(DEAL_IDS[0], [(T0, lead, 10, None, date(2025, 7, 1)), (T0 + timedelta(days=1), won, 10)])
    early, late = periods.EARLIEST, periods.LATEST - timedelta(seconds=1)
    mine.add_deal(DEAL_IDS[1], [(early, lead, 7, None, date(8999, 12, 31)), (late, lead, 8)])
    mine.add_deal(DEAL_IDS[2], [(early, lead, 5, None, date(1900, 1, 1))])
    other.add_pipeline(PIPELINE_IDS[1], ["open", "won"])
    load(engine, mine)
    load(engine, other)
    return mine, other


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(report_run.c.status, func.count()).group_by(report_run.c.status)).all()
    return {status: n for status, n in rows}


def assert_error_line(done: Outcome) -> None:
    """One line on stderr, `error: ...`, short, printable, no traceback."""
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr[:1000]
    assert len(done.stderr.splitlines()) == 1, done.stderr[:1000]
    line = done.stderr[:-1]
    assert line.startswith("error: ") and len(line) <= LINE_LIMIT, line[:1000]
    assert line.isprintable(), line
    assert "Traceback" not in done.stderr + done.stdout and "unexpected" not in line, line


def strict_json(text: str) -> bool:
    """The options text is JSON with no key repeated in an object (what a successful run may have been given)."""

    def no_repeats(pairs):
        assert len({key for key, _ in pairs}) == len(pairs), f"repeated key in {text[:200]!r}"
        return dict(pairs)

    return isinstance(json.loads(text, object_pairs_hook=no_repeats), dict)


def check_outcome(engine, before: dict[str, int], done: Outcome, args: list[str] | None = None) -> None:
    """Exit 0: a SUCCEEDED header and its facts, for canonical input only; 2: nothing written; 1: only with a
    FAILED header written. Every error is one short line."""
    after = counts(engine)
    if done.status == 0:
        assert done.stderr == ""
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
        assert outcome["status"] == "SUCCEEDED"
        given = dict(zip(args[1::2], args[2::2], strict=False)) if args else {}
        if "--tenant" in given:  # accepted only as 8-4-4-4-12 ASCII hex digits (either case), nothing around them
            assert given["--tenant"].lower() == outcome["tenant_id"], given["--tenant"]
        if "--options" in given and given["--options"] not in ("-", "@-") and not given["--options"].startswith("@"):
            assert strict_json(given["--options"]), given["--options"]
            for pipeline_id in json.loads(given["--options"]).get("pipeline_ids", []):
                assert CANONICAL.fullmatch(pipeline_id), pipeline_id
        report = get_report(outcome["report_type"])
        run_id = uuid.UUID(outcome["run_id"])
        with engine.connect() as conn:
            status = conn.execute(select(report_run.c.status).where(report_run.c.run_id == run_id)).scalar_one()
            facts = conn.execute(
                select(func.count()).select_from(report.fact_table).where(report.fact_table.c.run_id == run_id)
            ).scalar_one()
        assert status == "SUCCEEDED" and facts == outcome["fact_rows"]
        assert after == before | {"SUCCEEDED": before.get("SUCCEEDED", 0) + 1}
        return
    assert_error_line(done)
    if done.status == 2:
        assert after == before, done.stderr
    else:
        assert done.status == 1, (done.status, done.stderr)
        assert after == before | {"FAILED": before.get("FAILED", 0) + 1}, done.stderr


# ---- strategies ------------------------------------------------------------------------------------------

OFFSETS = ["", "Z", "+00:00", "+14:00", "-12:00", "+05:30", "-00:01", "+13:59", "+23:59"]


def instants() -> st.SearchStrategy[str]:
    """ISO dates and timestamps over Python's whole range (years 1 to 9999) with offsets up to +14:00 / -12:00,
    the edges of the supported range, and junk."""
    edges = st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:00:00-12:00",
            "9999-12-31",
            "0001-01-01",
            "1900-01-01",
            "1899-12-31T23:59:59.999999",
            "1900-01-01T14:00:00+14:00",
            "1899-12-31T12:00:00-12:00",
            "9000-01-01",
            "9000-01-01T00:00:00.000001",
            "8999-12-31T12:00:00-12:00",
            "9000-01-01T14:00:00+14:00",
            "2025-06-02",
            "2025-06-09",
        ]
    )
    days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
    stamps = st.builds(
        lambda moment, offset: moment.isoformat() + offset,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from(OFFSETS),
    )
    nearby = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 1, 1)).map(date.isoformat)
    unicode_digits = days.map(lambda text: text.translate(ARABIC_INDIC))
    spaced = st.builds(lambda text, pad: pad + text + pad, days, st.sampled_from([" ", "\t", "\n", "\u00a0"]))
    return st.one_of(edges, days, stamps, near_an_edge(), nearby, unicode_digits, spaced, st.text(max_size=40))


# A quarter or so around Python's edges (years 1 and 9999) and the supported range's (1900, 9000):
# a quarter after a start in the last one is past year 9999.
EDGES = [
    (datetime(1, 1, 1), datetime(1, 3, 31)),
    (datetime(1899, 10, 1), datetime(1900, 3, 31)),
    (datetime(8999, 10, 1), datetime(9000, 3, 31)),
    (datetime(9999, 10, 1), datetime(9999, 12, 31, 23, 59, 59)),
]


def spelled(moment: datetime, how: str) -> str:
    """`moment` as a date (`how` == "date") or a timestamp followed by the offset `how`."""
    return moment.date().isoformat() if how == "date" else moment.isoformat() + how


def near_an_edge(edge: tuple[datetime, datetime] | None = None) -> st.SearchStrategy[str]:
    """Dates and timestamps with offsets near the edges of Python's datetime and of the supported range."""
    if edge is None:
        return st.sampled_from(EDGES).flatmap(near_an_edge)
    return st.builds(spelled, st.datetimes(*edge), st.sampled_from(["date", *OFFSETS]))


def wild_windows() -> st.SearchStrategy[tuple[str | None, str | None]]:
    """Any bounds, or both near the same edge in order (where the grain and the FAILED header overflowed)."""
    same_edge = st.sampled_from(EDGES).flatmap(
        lambda edge: st.builds(
            lambda pair, hows: (spelled(min(pair), hows[0]), spelled(max(pair), hows[1])),
            st.lists(st.datetimes(*edge), min_size=2, max_size=2),
            st.tuples(st.sampled_from(["date", *OFFSETS]), st.sampled_from(["date", *OFFSETS])),
        )
    )
    return st.tuples(st.none() | instants(), st.none() | instants()) | same_edge


def tenant_ids(mine: TenantData) -> st.SearchStrategy[str]:
    canonical = str(mine.tenant_id)
    return st.one_of(
        st.sampled_from(
            [
                canonical,
                canonical.upper(),
                canonical.translate(ARABIC_INDIC),
                canonical.translate(FULLWIDTH),
                f" {canonical}",
                f"{canonical}\n",
                "{" + canonical + "}",
                "urn:uuid:" + canonical,
                canonical.replace("-", ""),
                str(uuid.UUID(int=0)),
                "a" * 100_000,
                "",
            ]
        ),
        st.text(max_size=50),
        st.text(min_size=1000, max_size=5000),
    )


def json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    )


def options_texts(mine: TenantData, other: TenantData) -> st.SearchStrategy[str]:
    """Option JSON texts: valid ones, ill-typed ones, repeated keys, deep nesting, huge and special numbers, ids
    in every non-canonical spelling."""
    mine_id, other_id = str(mine.pipelines[0]), str(other.pipelines[0])
    pipeline_ids = st.lists(
        st.sampled_from(
            [
                mine_id,
                mine_id.upper(),
                other_id,
                mine_id.translate(ARABIC_INDIC),
                "{" + mine_id + "}",
                mine_id.replace("-", ""),
                f" {mine_id}",
            ]
        ),
        max_size=3,
    )
    valid = st.fixed_dictionaries(
        {}, optional={"include_closed": st.booleans(), "pipeline_ids": pipeline_ids.filter(bool)}
    ).map(json.dumps)
    repeated = st.sampled_from(
        [
            '{"include_closed": true, "include_closed": false}',
            '{"include_closed": false, "include_closed": true}',
            f'{{"pipeline_ids": ["{mine_id}"], "pipeline_ids": ["{mine_id}"]}}',
            '{"x": {"a": 1, "a": 1}}',
        ]
    )
    deep = st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n + "]" * n) | st.sampled_from(
        ['{"a":' * OPTIONS_MAX_DEPTH + "1" + "}" * OPTIONS_MAX_DEPTH, "[" * 20_000]
    )
    numbers = st.one_of(
        st.integers(min_value=1, max_value=6000).map(lambda n: '{"include_closed": ' + "9" * n + "}"),
        st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1.5e308", "1e-999", "0.1" + "0" * 40]).map(
            lambda n: '{"include_closed": ' + n + "}"
        ),
    )
    return st.one_of(
        valid,
        repeated,
        deep,
        numbers,
        st.sampled_from(["null", "{}", "[]", '"x"', "true", "1", "", "-", "@/nonexistent/options.json", "@"]),
        json_values().map(json.dumps),
        st.text(max_size=60),
    )


def valid_windows() -> st.SearchStrategy[tuple[str | None, str | None]]:
    """Windows inside the supported range, start before end (or absent): these runs should succeed."""
    moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1))
    spelled = st.sampled_from([lambda m: m.date().isoformat(), lambda m: m.isoformat(), lambda m: m.isoformat() + "Z"])

    def window(pair: list[datetime], spell_start, spell_end) -> tuple[str | None, str | None]:
        start, end = spell_start(min(pair)), spell_end(max(pair))
        if UTC_CALENDAR.parse_bound(end, "end") <= UTC_CALENDAR.parse_bound(start, "start"):
            return (None, end)  # a date spelling made them equal: no lower bound instead
        return (start, end)

    pairs = st.builds(window, st.lists(moments, min_size=2, max_size=2, unique=True), spelled, spelled)
    return st.one_of(
        st.just((None, None)),
        pairs,
        st.sampled_from(
            [
                ("1900-01-01T14:00:00+14:00", "9000-01-01T00:00:00Z"),
                ("1899-12-31T12:00:00-12:00", "8999-12-31T12:00:00-12:00"),
                ("2025-06-02", "2025-06-09"),
                ("2025-01-01", None),
            ]
        ),
    )


def valid_options(report: str, mine: TenantData) -> st.SearchStrategy[str | None]:
    known = {
        "pipeline_ids": st.sampled_from([str(mine.pipelines[0]), str(mine.pipelines[0]).upper()]).map(lambda p: [p])
    }
    if "include_closed" in registry()[report].options_model.model_fields:
        known["include_closed"] = st.booleans()
    return st.none() | st.fixed_dictionaries({}, optional=known).map(json.dumps)  # type: ignore[arg-type]


@given(data=st.data())
def test_run_never_fails_badly(engine, invoke, tenants, data):
    """One input at a time goes wild (or none, or all of them): successes and every kind of refusal."""
    mine, other = tenants
    wild = data.draw(st.sampled_from(["nothing", "report", "tenant", "window", "options", "everything"]), label="wild")
    if wild in ("report", "everything"):
        report = data.draw(st.sampled_from(sorted(registry())) | st.text(max_size=30), label="report")
    else:
        report = data.draw(st.sampled_from(sorted(registry())), label="report")
    if wild in ("tenant", "everything"):
        tenant = data.draw(tenant_ids(mine), label="tenant")
    else:
        tenant = data.draw(st.sampled_from([str(mine.tenant_id), str(mine.tenant_id).upper()]), label="tenant")
    if wild in ("window", "everything"):
        window = data.draw(wild_windows(), label="window")
    else:
        window = data.draw(valid_windows(), label="window")
    if wild in ("options", "everything") or report not in registry():
        options = data.draw(options_texts(mine, other), label="options")
    else:
        options = data.draw(valid_options(report, mine), label="options")
    args = [report, "--tenant", tenant]
    for flag, value in zip(("--period-start", "--period-end"), window, strict=True):
        if value is not None:
            args += [flag, value]
    if options is not None:
        args += ["--options", options]
    if wild == "nothing":
        event("all inputs valid")
    before = counts(engine)

    done = invoke("run", *args, "--json")

    event(f"exit {done.status}")  # --hypothesis-show-statistics: how many examples got how far
    check_outcome(engine, before, done, args)


@given(report=st.sampled_from(sorted(registry())), window=wild_windows())
def test_any_window_is_refused_or_runs(engine, invoke, tenants, report, window):
    """Only the window goes wild: half the examples are both bounds near one edge of the range or of Python's."""
    mine, _ = tenants
    args = [report, "--tenant", str(mine.tenant_id)]
    for flag, value in zip(("--period-start", "--period-end"), window, strict=True):
        if value is not None:
            args += [flag, value]
    before = counts(engine)

    done = invoke("run", *args, "--json")

    event(f"exit {done.status}")
    check_outcome(engine, before, done)


@given(data=st.data())
def test_any_tenant_spelling_is_refused_or_canonical(engine, invoke, tenants, data):
    mine, _ = tenants
    tenant = data.draw(tenant_ids(mine), label="tenant")
    args = ["pipeline_overview", "--tenant", tenant]
    before = counts(engine)

    done = invoke("run", *args, "--json")

    event(f"exit {done.status}")
    check_outcome(engine, before, done, args)


@given(data=st.data())
def test_any_options_text_is_refused_or_strict(engine, invoke, tenants, data):
    mine, other = tenants
    args = ["pipeline_overview", "--tenant", str(mine.tenant_id), "--options", data.draw(options_texts(mine, other))]
    before = counts(engine)

    done = invoke("run", *args, "--json")

    event(f"exit {done.status}")
    check_outcome(engine, before, done, args)


# ---- the cases of the issue, one by one -------------------------------------------------------------------

ISSUE_CASES = {
    "window at year 9999": (["--period-start", "9999-12-01", "--period-end", "9999-12-31"], "supported range"),
    "end -12:00 on the last day": (["--period-end", "9999-12-31T23:00:00-12:00"], "supported range"),
    "start +14:00 on the first day": (["--period-start", "0001-01-01T00:00:00+14:00"], "supported range"),
    "start before 1900": (["--period-start", "1899-12-31T23:59:59Z", "--period-end", "1900-02-01"], "supported range"),
    "end after 9000": (["--period-end", "9000-01-01T00:00:01Z"], "supported range"),
    "date with spaces": (["--period-start", " 2025-06-02"], "not an ISO date"),
    "date in Arabic-Indic digits": (["--period-start", "2025-06-02".translate(ARABIC_INDIC)], "not an ISO date"),
    "options nested 20,000 deep": (["--options", "[" * 20_000 + "]" * 20_000], "nest deeper than 32"),
    "options nested 33 deep": (["--options", '{"a":' * 33 + "1" + "}" * 33], "nest deeper than 32"),
    "integer of 5,000 digits": (["--options", '{"include_closed": ' + "1" * 5000 + "}"], "5000 digits"),
    "float 1e999": (["--options", '{"include_closed": 1e999}'], "too large for a float"),
    "NaN": (["--options", '{"include_closed": NaN}'], "NaN, which is not JSON"),
    "repeated key, last true": (
        ["--options", '{"include_closed": false, "include_closed": true}'],
        "'include_closed' more than once",
    ),
    "repeated key, last false": (
        ["--options", '{"include_closed": true, "include_closed": false}'],
        "'include_closed' more than once",
    ),
    "options null": (["--options", "null"], "must be a JSON object ({} for every default), got null"),
    "options empty": (["--options", ""], "not valid JSON"),
    "options file missing": (["--options", "@/nonexistent/options.json"], "No such file or directory"),
}


@pytest.mark.parametrize("case", sorted(ISSUE_CASES))
def test_issue_case_is_one_line_exit_2_and_writes_nothing(engine, invoke, tenants, case):
    mine, _ = tenants
    args, expected = ISSUE_CASES[case]
    before = counts(engine)

    done = invoke("run", "pipeline_overview", "--tenant", str(mine.tenant_id), *args)

    assert done.status == 2, done.stderr
    assert_error_line(done)
    assert expected in done.stderr
    assert counts(engine) == before


@pytest.mark.parametrize(
    "spelling",
    ["arabic-indic", "fullwidth", "braces", "urn", "no hyphens", "leading space", "trailing newline", "100 KB"],
)
def test_tenant_must_be_a_canonical_uuid(engine, invoke, tenants, spelling):
    mine, _ = tenants
    canonical = str(mine.tenant_id)
    given = {
        "arabic-indic": canonical.translate(ARABIC_INDIC),
        "fullwidth": canonical.translate(FULLWIDTH),
        "braces": "{" + canonical + "}",
        "urn": "urn:uuid:" + canonical,
        "no hyphens": canonical.replace("-", ""),
        "leading space": " " + canonical,
        "trailing newline": canonical + "\n",
        "100 KB": "7" * 100_000,
    }[spelling]
    before = counts(engine)

    done = invoke("run", "pipeline_overview", "--tenant", given)

    assert done.status == 2 and "is not a UUID" in done.stderr
    assert_error_line(done)
    assert counts(engine) == before


def test_upper_case_tenant_is_the_same_tenant(engine, invoke, tenants):
    mine, _ = tenants
    done = invoke("run", "pipeline_overview", "--tenant", str(mine.tenant_id).upper(), "--json")
    assert done.status == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["tenant_id"] == str(mine.tenant_id)


@pytest.mark.parametrize("report_type", sorted(registry()))
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("1900-01-01", "1900-04-01"),  # a quarter at the lower edge
        ("8999-10-01", "9000-01-01"),  # a quarter at the upper edge
        ("1900-01-01T14:00:00+14:00", "9000-01-01T00:00:00Z"),  # the whole range, offsets at both edges
        (None, "8999-12-31T12:00:00-12:00"),  # no lower bound, the last instant
    ],
)
def test_every_report_runs_at_the_edges_of_the_range(engine, invoke, tenants, report_type, start, end):
    mine, _ = tenants
    # --so-far: the upper edge has not ended; the range is what this test is about
    window = (["--period-start", start] if start else []) + ["--period-end", end, "--so-far"]
    before = counts(engine)

    done = invoke("run", report_type, "--tenant", str(mine.tenant_id), *window, "--json")

    if start is None and registry()[report_type].requires_start:  # a snapshot at S needs an S: refused
        assert done.status == 2 and "needs a window with a start" in done.stderr, done.stderr
    else:
        assert done.status == 0, done.stderr
    check_outcome(engine, before, done)


def test_options_from_stdin_and_from_a_file(engine, invoke, tenants, tmp_path):
    mine, _ = tenants
    options = json.dumps({"include_closed": True, "pipeline_ids": [str(PIPELINE_IDS[0])]})
    (tmp_path / "options.json").write_text(options, encoding="utf-8")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + options.encode())
    base = ("run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--json")

    outcomes = [
        invoke(*base, "--options", "-", stdin=options.encode()),
        invoke(*base, "--options", "@-", stdin=options.encode()),
        invoke(*base, "--options", f"@{tmp_path / 'options.json'}"),
        invoke(*base, "--options", f"@{tmp_path / 'bom.json'}"),
    ]

    for done in outcomes:
        assert done.status == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["options"]["include_closed"] is True


def test_large_options_pass_through_a_file(engine, invoke, tenants, tmp_path):
    """Far more than one argv argument holds (about 128 KiB), within the 1 MiB bound."""
    mine, _ = tenants
    ids = [str(PIPELINE_IDS[0])] * 20_000  # duplicates are one pipeline
    path = tmp_path / "large.json"
    path.write_text(json.dumps({"pipeline_ids": ids}), encoding="utf-8")
    assert 128 * 1024 < path.stat().st_size <= OPTIONS_MAX_BYTES

    done = invoke("run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--options", f"@{path}", "--json")

    assert done.status == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["options"]["pipeline_ids"] == [str(PIPELINE_IDS[0])]


@pytest.mark.parametrize("problem", ["missing", "a folder", "not UTF-8", "too large", "too large on stdin"])
def test_unreadable_options_are_one_clear_line(engine, invoke, tenants, tmp_path, problem):
    mine, _ = tenants
    stdin = None
    if problem == "missing":
        given, expected = f"@{tmp_path / 'nowhere.json'}", "No such file or directory"
    elif problem == "a folder":
        given, expected = f"@{tmp_path}", "Is a directory"
    elif problem == "not UTF-8":
        (tmp_path / "latin1.json").write_bytes(b'{"include_closed": "\xe9"}')
        given, expected = f"@{tmp_path / 'latin1.json'}", "not UTF-8"
    elif problem == "too large":
        (tmp_path / "huge.json").write_bytes(b" " * OPTIONS_MAX_BYTES + b"{}")
        given, expected = f"@{tmp_path / 'huge.json'}", "larger than 1024 KiB"
    else:
        given, expected, stdin = "-", "larger than 1024 KiB", b"{}" + b" " * OPTIONS_MAX_BYTES
    before = counts(engine)

    done = invoke("run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--options", given, stdin=stdin)

    assert done.status == 2 and expected in done.stderr, done.stderr
    assert_error_line(done)
    assert counts(engine) == before


def test_foreign_and_malformed_pipelines_are_refused_with_a_short_line(engine, invoke, tenants):
    mine, other = tenants
    many = [str(uuid.UUID(int=n)) for n in range(1, 5000)]
    before = counts(engine)

    foreign = invoke(
        "run", "pipeline_overview", "--tenant", str(mine.tenant_id), "--options", json.dumps({"pipeline_ids": many})
    )
    malformed = invoke(
        "run",
        "pipeline_overview",
        "--tenant",
        str(mine.tenant_id),
        "--options",
        json.dumps({"pipeline_ids": [str(other.pipelines[0]).translate(ARABIC_INDIC)]}),
    )

    assert foreign.status == 2 and "and 4996 more do not belong" in foreign.stderr
    assert malformed.status == 2 and "is not a UUID" in malformed.stderr
    for done in (foreign, malformed):
        assert_error_line(done)
    assert counts(engine) == before


def test_unknown_report_and_unknown_flag_are_cut(invoke):
    long_name = "r" * 100_000
    for done in (invoke("run", long_name, "--tenant", "x"), invoke("run", "x", "--tenant", "x", "--" + long_name)):
        assert done.status == 2
        assert_error_line(done)


# ---- the parsers themselves --------------------------------------------------------------------------------


def test_json_bounds():
    assert parse_options_json("[" * OPTIONS_MAX_DEPTH + "]" * OPTIONS_MAX_DEPTH)
    assert parse_options_json('["[[[[' + "[" * 100 + '"]') == ["[[[[" + "[" * 100]  # brackets in strings
    assert parse_options_json("9" * NUMBER_MAX_DIGITS) == int("9" * NUMBER_MAX_DIGITS)
    assert parse_options_json('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}')  # same key, different objects
    assert parse_options_json("1e-999") == 0.0
    refused = [
        "[" * (OPTIONS_MAX_DEPTH + 1) + "]" * (OPTIONS_MAX_DEPTH + 1),
        "9" * (NUMBER_MAX_DIGITS + 1),
        "-" + "9" * (NUMBER_MAX_DIGITS + 1),
        "0." + "1" * NUMBER_MAX_DIGITS,
        "1e999",
        "Infinity",
        '{"a": 1, "a": 1}',
        " " * OPTIONS_MAX_BYTES + "1",
        '"' + "é" * (OPTIONS_MAX_BYTES // 2) + '"',  # under the limit in characters, over it in UTF-8
        '"\\"' * 200_000,  # unterminated strings with escaped quotes: still one linear scan
    ]
    for text in refused:
        with pytest.raises(InputError):
            options_dict(text)


def test_options_null_is_refused_but_no_options_are_the_defaults():
    with pytest.raises(InputError, match="got null"):
        options_dict("null")
    assert options_dict(None) is None and options_dict("{}") == {}


@pytest.mark.parametrize(
    "raw",
    [
        "1b4351f6-0e64-4b63-953f-4c0124b86f1e".translate(ARABIC_INDIC),
        "{1b4351f6-0e64-4b63-953f-4c0124b86f1e}",
        "urn:uuid:1b4351f6-0e64-4b63-953f-4c0124b86f1e",
        "1b4351f60e644b63953f4c0124b86f1e",
        "1b4351f6-0e64-4b63-953f-4c0124b86f1e\n",
        " 1b4351f6-0e64-4b63-953f-4c0124b86f1e",
    ],
)
def test_non_canonical_uuids_are_refused_everywhere(raw):
    with pytest.raises(InputError, match="not a UUID"):
        parse_tenant_id(raw)
    for report in registry().values():
        with pytest.raises(InputError, match="not a UUID"):
            parse_options(report.options_model, {"pipeline_ids": [raw]})
        # the Dagster run config path: the Launchpad's config -> options_of -> the report's options model
        config = report_config_class(report)(pipeline_ids=[raw])
        with pytest.raises(InputError, match="not a UUID"):
            parse_options(report.options_model, options_of(config))
        with pytest.raises(InputError, match="not a UUID"):
            parse_options(report.options_model, options_of({"pipeline_ids": [raw]}))


def test_canonical_uuids_pass_the_dagster_run_config_path():
    raw = "1B4351F6-0E64-4B63-953F-4C0124B86F1E"
    for report in registry().values():
        parsed = parse_options(report.options_model, options_of(report_config_class(report)(pipeline_ids=[raw])))
        assert parsed.pipeline_ids == (uuid.UUID(raw),)
    assert parse_tenant_id(raw) == uuid.UUID(raw)


def test_shown_and_one_line_cut_and_escape():
    assert shown("abc") == "'abc'"
    assert shown("x" * 100_000) == "'" + "x" * 100 + "'... (100000 characters)"
    assert len(shown(list(range(100_000)))) < 200
    assert shown("\x1b[31m\udcff") == "'\\x1b[31m\\udcff'"
    line = one_line("error: a\nb\r\n\u2028c\x1b[0m \udcff" + "z" * 1000)
    assert line.startswith("error: a b c\\x1b[0m \\udcff") and len(line) == LINE_LIMIT
    assert line.isprintable() and re.fullmatch(r"[^\n]*", line)
