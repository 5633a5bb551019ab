"""Hostile scenario input: each ends in a one-line refusal naming the limit, in the CLI
(`screen --scenario`), on the What-if page (file upload) and in a shared link (`?s=`)."""

from __future__ import annotations

import base64
import codecs
import json

import pytest
from apptest_support import APP, TIMEOUT, open_page
from streamlit.testing.v1 import AppTest

from eligibility import cli
from eligibility.scenario import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NAME_CHARS,
    MAX_TOKEN_CHARS,
    ScenarioError,
    decode_from_url,
    scenario_from_bytes,
)

GOOD = {"name": "relax age", "parameters": {"age_max": 70}, "disabled": ["INC-7"]}

HOSTILE: dict[str, tuple[str, bytes, str]] = {
    # case: (file name, bytes, what the one-line message must say)
    "5000-digit integer (JSON)": ("s.json", b'{"parameters": {"age_max": ' + b"9" * 5000 + b"}}", "30 digits"),
    "5000-digit integer (YAML)": ("s.yaml", b"parameters:\n  age_max: " + b"9" * 5000 + b"\n", "30 digits"),
    "4000-digit integer (JSON)": ("s.json", b'{"parameters": {"age_max": ' + b"9" * 4000 + b"}}", "30 digits"),
    "deep JSON": ("s.json", b'{"parameters": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "limit"),
    "deep JSON lists": ("s.json", b'{"disabled": ' + b"[" * 20 + b"]" * 20 + b"}", f"{MAX_DEPTH} levels"),
    "deep YAML flow": ("s.yaml", b"parameters: " + b"[" * 5000 + b"]" * 5000 + b"\n", f"{MAX_DEPTH} levels"),
    "deep YAML blocks": ("s.yaml", b"".join(b" " * (2 * i) + b"k%d:\n" % i for i in range(40)) + b"  " * 40 + b"x: 1\n",
                         f"{MAX_DEPTH} levels"),
    "YAML alias bomb": ("s.yaml", b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
                        + b"".join(b"%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n" % ((c,) * 2 + (c - 1,) * 10)
                                   for c in range(ord("b"), ord("f"))) + b"parameters: {}\n", "values"),
    "10 MB name": ("s.json", json.dumps({"name": "n" * 10_000_000}).encode(), f"{MAX_FILE_BYTES:,}"),
    "long name": ("s.json", json.dumps({"name": "n" * (MAX_NAME_CHARS + 1)}).encode(), f"{MAX_NAME_CHARS}"),
    "UTF-16 without BOM": ("s.json", json.dumps(GOOD).encode("utf-16-le"), "not UTF-8"),
    "Latin-1": ("s.yaml", "name: Müller\n".encode("latin-1"), "line 1"),
    "huge float": ("s.json", b'{"parameters": {"age_max": 1e999}}', "non-negative number"),
}


@pytest.fixture
def cohort_csv(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("patient_id,disease,age_years\nP1,SSc,45\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_cli_refuses_in_one_line(case, cohort_csv, tmp_path, capsys):
    name, data, says = HOSTILE[case]
    sc = tmp_path / name
    sc.write_bytes(data)
    out = tmp_path / "r.csv"
    rc = cli.main(["screen", str(cohort_csv), "-o", str(out), "--scenario", str(sc)])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: invalid scenario {name}: ")
    assert says in lines[0] and len(lines[0]) < 400 and not out.exists()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_engine_refuses_with_a_scenario_error(case):
    name, data, says = HOSTILE[case]
    with pytest.raises(ScenarioError, match=says.replace("(", r"\(")) as e:
        from eligibility.scenario import resolve

        resolve(scenario_from_bytes(data, name))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bom,codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_bom_is_read(bom, codec):
    assert scenario_from_bytes(bom + json.dumps(GOOD).encode(codec), "s.json").parameters == {"age_max": 70}


def _token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_oversized_and_hostile_link_tokens():
    with pytest.raises(ScenarioError, match=f"limit is {MAX_TOKEN_CHARS:,}"):
        decode_from_url("A" * (MAX_TOKEN_CHARS + 1))
    with pytest.raises(ScenarioError, match="levels"):
        decode_from_url(_token(b'{"disabled": ' + b"[" * 100 + b"]" * 100 + b"}"))
    with pytest.raises(ScenarioError, match="30 digits"):
        decode_from_url(_token(b'{"parameters": {"age_max": ' + b"9" * 5000 + b"}}"))
    assert decode_from_url(_token(json.dumps(GOOD).encode())).name == "relax age"


@pytest.mark.parametrize("case", ["deep JSON", "5000-digit integer (JSON)", "10 MB name", "UTF-16 without BOM"])
def test_what_if_upload_refuses_in_one_message(case):
    name, data, says = HOSTILE[case]
    at = open_page("app_pages/what_if.py")
    at.file_uploader(key="wi_upload").set_value((name, data, "application/json")).run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # markdown escapes off: the text as shown
    assert len(errors) == 1 and "was not loaded" in errors[0] and says in errors[0]
    assert "Traceback" not in errors[0] and "/work/" not in errors[0]


@pytest.mark.parametrize("token,says", [
    ("A" * (MAX_TOKEN_CHARS + 1), "limit"),
    (_token(b'{"parameters": {"a": ' * 3000 + b"1" + b"}" * 3000), "limit"),
    (_token(b'{"parameters": {"age_max": ' + b"9" * 5000 + b"}}"), "30 digits"),
])
def test_shared_link_with_a_hostile_token_is_refused_on_the_page(token, says):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["s"] = token
    at.run()  # the link is read on the session's first run; the sidebar says why it was not applied
    assert not at.exception
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "not applied" in warnings and says in warnings
