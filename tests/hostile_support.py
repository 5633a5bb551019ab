"""Run one hostile file through both entry points and check the two allowed outcomes.

`screen` (the CLI, in-process) and the dashboard's upload path (`load_cohort(bytes,
filename=...)`, as the sidebar calls it) must agree: either exit 0 with one output
row per input row and every problem on standard error, or exit 2 with one line
naming the problem, no output file, and the same message from the upload path.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eligibility import cli
from eligibility.loader import Cohort, CohortError, load_cohort


@dataclass
class Outcome:
    rc: int
    stderr: str
    cohort: Cohort | None  # from the upload path
    error: str | None  # the upload path's message
    results: pd.DataFrame | None  # screen's output

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def run_both(data: bytes, name: str, tmp_path: Path, capsys, sheet: str | None = None) -> Outcome:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "results.csv"
    out.unlink(missing_ok=True)
    capsys.readouterr()
    rc = cli.main(["screen", str(src), "-o", str(out), *(["--sheet", sheet] if sheet else [])])
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    assert "Traceback" not in err
    try:
        cohort, error = load_cohort(data, filename=name, sheet=sheet), None
    except CohortError as e:
        cohort, error = None, str(e)
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert not out.exists()
        assert error is not None and lines[0] == f"error: {error}", (lines, error)
        assert "cannot be read (" not in lines[0], "an unforeseen exception, caught only by the last resort"
        return Outcome(rc, err, None, error, None)
    assert error is None, error
    results = pd.read_csv(io.BytesIO(out.read_bytes()), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(results) == len(cohort)
    return Outcome(rc, err, cohort, None, results)


def issues_of(cohort: Cohort, kind: str):
    return [i for i in cohort.issues if i.kind == kind]
