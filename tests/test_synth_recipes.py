"""The generator's recipe interpreter (fields.yaml `synth:`): per-disease tables, block, clip,
decimals and missing share; a `model:` recipe the clinical model does not fill is an error."""

from __future__ import annotations

import numpy as np
import pytest

from eligibility import synth
from eligibility.fields import DISEASES, load_fields

BASE = [{"name": "patient_id", "type": "id", "synth": {"model": "identity"}},
        {"name": "disease", "type": "disease", "synth": {"model": "identity"}}]


def _run(monkeypatch, extra: list[dict], n: int = 20000, seed: int = 4):
    fields = load_fields([*BASE, *extra])
    monkeypatch.setattr(synth, "FIELDS", fields)
    b = synth._Builder(n, seed)
    d = np.random.default_rng(seed).integers(0, len(DISEASES) + 1, n)
    b.txt["patient_id"], b.txt["disease"] = object(), object()  # filled by the model in generate()
    synth._from_recipes(b, d)
    return b, d


def test_number_recipe_per_disease_clip_decimals_missing(monkeypatch):
    b, d = _run(monkeypatch, [{"name": "x", "type": "number", "synth": {
        "normal": {"mean": {"SSc": 100, "default": 10}, "sd": 2}, "clip": [0, 104],
        "decimals": 1, "missing": 0.1}}])
    x = b.num["x"]
    ssc = d == DISEASES.index("SSc")
    assert abs(np.isnan(x).mean() - 0.1) < 0.01
    assert abs(np.nanmean(x[ssc]) - 100) < 0.2 and abs(np.nanmean(x[~ssc]) - 10) < 0.1
    assert np.nanmax(x) <= 104 and np.nanmin(x) >= 0
    assert np.allclose(x[~np.isnan(x)], np.round(x[~np.isnan(x)], 1))


def test_block_yesno_category_and_event(monkeypatch):
    b, d = _run(monkeypatch, [
        {"name": "y", "type": "yesno", "block": "AAV", "synth": {"yes_share": {"default": 0.5, "AAV": 0.25}}},
        {"name": "z", "type": "category", "categories": ["a", "b"], "synth": {"choice": {"a": 0.9, "b": 0.1}}},
        {"name": "w", "type": "number", "synth": {"event": {"p": 0.2, "mean_days": 30}}},
    ])
    aav = d == DISEASES.index("AAV")
    assert (b.yn["y"][~aav] == -1).all() and abs(b.yn["y"][aav].mean() - 0.25) < 0.03
    codes, labels = b.cat["z"]
    assert labels == ["a", "b"] and abs((codes == 1).mean() - 0.1) < 0.01
    w = b.num["w"]
    assert abs((~np.isnan(w)).mean() - 0.2) < 0.01 and np.nanmin(w) >= 0


def test_same_stream_same_values_and_independent_of_other_columns(monkeypatch):
    one = [{"name": "x", "type": "number", "synth": {"lognormal": {"median": 200, "sigma": 0.3}}}]
    two = [*one, {"name": "v", "type": "number", "synth": {"uniform": {"low": 1, "high": 2}}}]
    a, _ = _run(monkeypatch, one)
    b, _ = _run(monkeypatch, two)
    assert np.array_equal(a.num["x"], b.num["x"])  # adding a column changes no other column
    assert ((b.num["v"] >= 1) & (b.num["v"] < 2)).all()


def test_model_recipe_the_model_does_not_fill_is_named(monkeypatch):
    with pytest.raises(ValueError, match="fields.yaml: q: synth model 'labs'"):
        _run(monkeypatch, [{"name": "q", "type": "number", "synth": {"model": "labs"}}], n=10)
