"""benchmarks/tradeoff.py's smollm_pool workload without the model: its corrupted answers (wrong, same family,
seeded ~20%), its held-out split (disjoint from training) and its per-family teacher-forced exact match."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import tradeoff  # noqa: E402

pytest.importorskip("reasoning_gym")

SMALL = dict(tradeoff.POOL, family_train=[20, 20, 20], family_eval=[10, 10, 10], n_train=60, n_eval=30)  # few


def test_corrupted_answers_are_wrong_and_from_the_same_family(tmp_path):
    train, _ = tradeoff.pool_rows(SMALL)
    ids = tradeoff.noise_record(SMALL, str(tmp_path / "ids.json"))["ids"]
    wrong = tradeoff.corrupt_answers(train, ids)
    assert sorted(wrong) == ids
    for i, a in wrong.items():
        assert a != train[i]["answer"]
        assert a in {r["answer"] for r in train if r["family"] == train[i]["family"]}  # another problem's answer


def test_corrupted_ids_are_seeded_and_about_a_fifth(tmp_path):
    c = dict(tradeoff.POOL)  # the real sizes: 300 training problems
    first = tradeoff.noise_record(c, str(tmp_path / "a.json"))["ids"]
    assert first == tradeoff.noise_record(c, str(tmp_path / "b.json"))["ids"]  # a fresh draw: the same ids
    assert len(first) == 60 and len(set(first)) == 60 and max(first) < 300
    train, _ = tradeoff.pool_rows(SMALL)
    ids = [i for i in first if i < len(train)]
    assert tradeoff.corrupt_answers(train, ids) == tradeoff.corrupt_answers(train, ids)
    assert tradeoff.corrupt_answers(train, ids) != tradeoff.corrupt_answers(train, ids, seed=1)


def test_stored_ids_and_answers_win_over_a_new_draw(tmp_path):
    path = tmp_path / "ids.json"
    rec = tradeoff.noise_record(SMALL, str(path), wrong=lambda ids: {i: "x" for i in ids})
    assert json.load(open(path))["answers"] == {str(i): "x" for i in rec["ids"]}
    again = tradeoff.noise_record(SMALL, str(path), wrong=lambda ids: {i: "y" for i in ids})
    assert again["answers"] == rec["answers"]  # a later run trains on the same corrupted data
    other = tradeoff.noise_record(dict(SMALL, family_train=[30, 20, 10]), str(path),
                                  wrong=lambda ids: {i: "z" for i in ids})
    assert set(other["answers"].values()) == {"z"}  # other data: a new record


def test_held_out_problems_are_never_trained_on():
    train, held = tradeoff.pool_rows(SMALL)
    assert len(train) == 60 and len(held) == 30
    assert sum(r["family"] == "products_1d" for r in train) == 20
    assert not {r["question"] for r in train} & {r["question"] for r in held}
    assert [sum(r["family"] == f for r in held) for f in SMALL["families"]] == [10] * len(SMALL["families"])


def test_exact_match_needs_every_answer_token_per_family():
    # rows of 5 tokens, the answer (labels != -100) at positions 3-4; preds[:, t] predicts token t + 1
    labels = np.array([[-100, -100, -100, 7, 2], [-100, -100, -100, 8, 2], [-100, -100, 5, 6, 2],
                       [-100, -100, -100, 9, 2]])
    preds = np.array([[0, 0, 7, 2], [0, 0, 8, 3], [0, 5, 6, 2], [0, 0, 1, 2]])  # rows 0 and 2 right
    got = tradeoff.family_em(preds, labels, ["a", "a", "b", "b"], ["a", "b", "c"])
    assert got["metric"] == 0.5 and got["em_a"] == 0.5 and got["em_b"] == 0.5 and np.isnan(got["em_c"])
    assert tradeoff.answer_exact(preds, labels).tolist() == [True, False, True, False]
    preds[1, 3] = 2  # the EOS too: now right
    assert tradeoff.family_em(preds, labels, ["a", "a", "b", "b"], ["a", "b"])["em_a"] == 1.0


def test_the_family_table_shows_only_for_the_pool():
    s = {"curve_1.0": {"families": {"gcd": (0.5, 0.1)}}}
    assert tradeoff.family_table(s, {"families": ["gcd"]})[-1] == "| curve_1.0 | 0.5000 ± 0.1000 |"
    assert tradeoff.family_table({"curve_1.0": {}}, {}) == []
