"""The hypothesis profiles of the suite (no DB; a pytest subprocess): `default` reports a failing property at
once with its example, unshrunk; `thorough` shrinks it."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import Phase, settings

PROJECT = Path(__file__).resolve().parents[1]

# A property that fails on most drawn histories, as a flipped comparison in a report would.
FAILING_PROPERTY = textwrap.dedent(
    """
    from hypothesis import given

    import dyno_reports_tests.conftest  # noqa: F401  (registers and loads the suite's profiles)
    from dyno_reports_tests.support.history import tenant_histories


    @given(tenant_histories())
    def test_flipped(data):
        assert len(data.rows) < 2
    """
)


def run_failing_property(tmp_path: Path, profile: str) -> str:
    test_file = tmp_path / "test_planted_failure.py"
    test_file.write_text(FAILING_PROPERTY)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider", "--hypothesis-show-statistics"],
        cwd=tmp_path,
        env={"HYPOTHESIS_PROFILE": profile, "PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def test_the_default_profile_does_not_shrink_and_the_thorough_one_does():
    assert Phase.shrink not in settings.get_profile("default").phases
    assert Phase.shrink in settings.get_profile("thorough").phases


@pytest.mark.parametrize(("profile", "shrinks"), [("default", False), ("thorough", True)])
def test_a_failing_property_prints_its_example(tmp_path, profile, shrinks):
    output = run_failing_property(tmp_path, profile)

    # hypothesis says "Falsifying example" of a shrunk example, "Failing test case" of one as drawn
    assert re.search(r"(Falsifying example|Failing test case): test_flipped\(", output)
    assert "@reproduce_failure(" in output  # the line that replays the example exactly
    assert ("shrink phase" in output) is shrinks
