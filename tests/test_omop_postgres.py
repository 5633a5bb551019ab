"""import-omop from a PostgreSQL warehouse (a connection URL), not only from DuckDB files:
the same CDM loaded into a throwaway local server gives the same cohort, provenance and
report as the DuckDB file, through the command line too."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from eligibility.cli import main as cli_main
from eligibility.importers.omop import connect, import_omop
from eligibility.omop_ddl import TABLES, columns, create_sql
from eligibility.synth_omop import DEFAULT_AS_OF, build_cdm, source_cohort, write_cdm
from tests import postgres_server

pytestmark = pytest.mark.skipif(not postgres_server.available(),
                                reason="PostgreSQL server programs not installed (.ci/run installs them)")


def _copy_into_postgres(cdm, url: str) -> None:
    import psycopg

    src = duckdb.connect(str(cdm), read_only=True)
    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as pg:
        for table in TABLES:
            pg.execute(create_sql(table))
            cols = ", ".join(columns(table))
            text = src.execute(f"SELECT {cols} FROM {table}").df().to_csv(index=False, header=False)
            with pg.cursor().copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
    src.close()


@pytest.fixture(scope="module")
def cdm_both(tmp_path_factory):
    path = tmp_path_factory.mktemp("pg") / "cdm.duckdb"
    write_cdm(build_cdm(source_cohort(400, 21), seed=21, as_of=DEFAULT_AS_OF), path)
    with postgres_server.postgres_url() as url:
        _copy_into_postgres(path, url)
        yield path, url


def _rows(frame: pd.DataFrame) -> pd.DataFrame:  # row order follows each database
    return frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)


def test_postgres_source_gives_what_the_duckdb_file_gives(cdm_both):
    path, url = cdm_both
    by_file = import_omop(connect(str(path)), as_of=DEFAULT_AS_OF)
    by_pg = import_omop(connect(url), as_of=DEFAULT_AS_OF)
    assert len(by_file.cohort) > 300
    pd.testing.assert_frame_equal(by_file.cohort, by_pg.cohort)
    pd.testing.assert_frame_equal(_rows(by_file.provenance), _rows(by_pg.provenance))
    pd.testing.assert_frame_equal(_rows(by_file.left_out), _rows(by_pg.left_out))
    pd.testing.assert_frame_equal(_rows(by_file.report), _rows(by_pg.report))


def test_command_reads_a_postgres_url(cdm_both, tmp_path, capsys):
    path, url = cdm_both
    out = tmp_path / "cohort.csv"
    assert cli_main(["import-omop", url, "-o", str(out), "--as-of", DEFAULT_AS_OF.isoformat()]) == 0
    assert "imported" in capsys.readouterr().err
    expected = import_omop(connect(str(path)), as_of=DEFAULT_AS_OF).cohort
    assert len(pd.read_csv(out)) == len(expected)


def test_unreachable_postgres_is_one_line(capsys, tmp_path):
    from tests.streamlit_server import free_port

    url = f"postgres://postgres@127.0.0.1:{free_port()}/postgres"
    assert cli_main(["import-omop", url, "-o", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot connect to postgres:// source")
