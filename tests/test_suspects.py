"""Likely label errors: the ranking (geko_hf.core.label_issues), `geko-hf report --suspects` and
`trainer.get_suspect_samples()`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geko_hf import GEKOConfig
from geko_hf.core.checkpoint import save_geko_state
from geko_hf.core.state import SampleState
from geko_hf.core.label_issues import precision_at_k, suspect_ranking, suspect_samples
from geko_hf.core.tracker import GEKOTracker


def _noisy_state(n=400, flipped=100, epochs=3, seed=0):
    """Clean samples: margins drift up from around 0; flipped ones stay negative (the model predicts the true
    class); a few clean but hard ones are wrong in the first epoch only."""
    rng = np.random.default_rng(seed)
    st = SampleState(n, GEKOConfig(mastery="margin", stuck_after=2))
    flip = rng.choice(n, flipped, replace=False)
    for e in range(epochs):
        m = rng.normal(0.1 + 0.2 * e, 0.25, n)
        m[flip] = rng.normal(-0.3 - 0.1 * e, 0.2, flipped)
        m = m.clip(-1, 1)
        st.update(np.arange(n), np.abs(m), m > 0, np.full(n, 0.8), margin=m)
        st.repartition()
    return st, flip


def test_ranking_finds_persistently_contradicted_labels():
    st, flip = _noisy_state()
    ranking = suspect_ranking(st.arrays())
    assert sorted(ranking.tolist()) == list(range(400))  # every observed sample, once
    assert precision_at_k(ranking, flip) >= 0.85
    random_precision = precision_at_k(np.random.default_rng(1).permutation(400), flip)
    assert random_precision < 0.4


def test_suspect_samples_are_the_measured_ranking_and_explained():
    st, flip = _noisy_state()
    rows = suspect_samples(st.arrays(), 10)
    assert [r["id"] for r in rows] == suspect_ranking(st.arrays())[:10].tolist()
    means = [r["mean_margin"] for r in rows]
    assert means == sorted(means)
    assert {"id", "mean_margin", "margin", "wrong_streak", "stuck", "times_seen", "loss"} <= set(rows[0])


def test_users_get_the_ranking_whose_precision_is_published():
    """Issue 33.3: the published precision is scored on suspect_ranking; get_suspect_samples / --suspects kept only
    samples wrong now. Sample 0 (flipped, wrong for 2 epochs, right by chance in the last) led the measured ranking
    and was dropped from the users' one."""
    st = SampleState(4)
    st.update([0, 1, 2, 3], [2.0, 2.0, 0.1, 0.1], [False, False, True, True], [0.9] * 4, margin=[-0.9, -0.8, 0.5, 0.6])
    st.update([0, 1, 2, 3], [2.0, 2.0, 0.1, 0.1], [False, False, True, True], [0.9] * 4, margin=[-0.9, -0.8, 0.5, 0.6])
    st.update([0, 1, 2, 3], [0.6, 2.0, 0.1, 0.1], [True, False, True, True], [0.6] * 4, margin=[0.05, -0.8, 0.5, 0.6])
    served = [r["id"] for r in suspect_samples(st.arrays(), 2)]
    assert served == suspect_ranking(st.arrays())[:2].tolist() == [1, 0]  # both flipped samples, as measured


def test_pruned_and_unseen_samples_are_not_suspects():
    st = SampleState(4)
    st.update([0, 1, 2], [2.0] * 3, [False] * 3, [0.9] * 3, margin=[-0.8, -0.5, -0.2])
    st.pruned[0] = True
    assert suspect_ranking(st.arrays()).tolist() == [1, 2]


def test_precision_at_k():
    assert precision_at_k(np.array([3, 1, 2, 0]), [1, 3]) == 1.0
    assert precision_at_k(np.array([3, 1, 2, 0]), [0, 2]) == 0.0
    assert precision_at_k(np.array([3, 1, 2, 0]), [0, 3], k=4) == 0.5


def test_report_suspects_lists_them_with_text(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import geko_hf.cli as geko_hf_cli
    from geko_hf.cli import run_files

    tracker = GEKOTracker(5, GEKOConfig(), seed=0, num_epochs=3, unit=1, batch_size=1)
    tracker.record(np.arange(5), [0.1, 2.0, 0.2, 1.5, 0.3], [True, False, True, False, True], [0.9] * 5,
                   np.ones(5, int), 5, margin=[0.8, -0.9, 0.6, -0.3, 0.7])
    tracker.end_epoch(0, 5, 5, 5)
    run = tmp_path / "run"
    save_geko_state(str(run), {"tracker": tracker.state_dict()})
    with open(run / run_files.TEXTS_FILE, "w") as f:
        for i in range(5):
            f.write(json.dumps({"id": i, "text": f"review number {i}", "label": "fresh"}) + "\n")
    out = geko_hf_cli.main(["report", str(run), "--no_plot", "--label-issues", "--top_k", "5"])
    assert out == 0
    text = capsys.readouterr().out
    part = text[text.index("likely label errors"):]
    # every observed sample, lowest mean margin first: 1, 3, 2, 4, 0
    assert part.index("#1 ") < part.index("#3 ") < part.index("#2 ") < part.index("#0 ") and "review number 1" in part


def test_report_suspects_still_works_and_says_it_is_deprecated(tmp_path, capsys):
    import geko_hf.cli as geko_hf_cli

    tracker = GEKOTracker(3, GEKOConfig(), seed=0, num_epochs=1, unit=1, batch_size=1)
    tracker.record(np.arange(3), [0.1, 2.0, 0.2], [True, False, True], [0.9] * 3, np.ones(3, int), 3,
                   margin=[0.8, -0.9, 0.6])
    tracker.end_epoch(0, 3, 3, 3)
    save_geko_state(str(tmp_path), {"tracker": tracker.state_dict()})
    assert geko_hf_cli.main(["report", str(tmp_path), "--no_plot", "--suspects", "--top_k", "3"]) == 0
    out = capsys.readouterr()
    assert "likely label errors" in out.out and "--suspects is deprecated" in out.err and "--label-issues" in out.err


def test_trainer_get_label_issues_and_the_deprecated_get_suspect_samples(tmp_path):
    """After a real (tiny) run, the method returns the top of the ranking with their dataset text and label."""
    pytest.importorskip("transformers")
    from datasets import Dataset
    from transformers import BertConfig, BertForSequenceClassification

    from geko_hf import GEKOTrainer
    from hf_helpers import make_args

    rng = np.random.default_rng(0)
    n = 48
    labels = rng.integers(0, 2, n)
    ids = [[101, 5 + int(y), 102] for y in labels]  # token 5 or 6 gives the label away...
    noisy = labels.copy()
    noisy[:8] = 1 - noisy[:8]  # ...except for the first 8 rows, whose label is flipped
    ds = Dataset.from_dict({"input_ids": ids, "label": noisy.tolist(), "text": [f"row {i}" for i in range(n)]})
    model = BertForSequenceClassification(BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))

    class Tok:  # the collator only needs padding
        pad_token_id, padding_side, model_input_names = 0, "right", ["input_ids", "attention_mask"]

        def pad(self, features, **kw):
            m = max(len(f["input_ids"]) for f in features)
            import torch

            return {"input_ids": torch.tensor([f["input_ids"] + [0] * (m - len(f["input_ids"])) for f in features]),
                    "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (m - len(f["input_ids"]))
                                                    for f in features]),
                    "labels": torch.tensor([f["label"] for f in features])}

    trainer = GEKOTrainer(model=model, args=make_args(tmp_path, num_train_epochs=8, learning_rate=2e-2,
                                                      per_device_train_batch_size=8),
                          train_dataset=ds, data_collator=Tok().pad,
                          geko_config=GEKOConfig(light_sample_rate=1.0))
    with pytest.raises(RuntimeError, match="train"):
        trainer.get_label_issues()
    trainer.train()
    table = trainer.get_label_issues()  # every sample scored, most likely wrong first
    assert len(table) == n and table["label_issue_rank"] == list(range(1, n + 1))
    assert np.all(np.diff(table["label_issue_score"]) <= 1e-12) and table["text"][0] == f"row {table['sample_id'][0]}"
    assert trainer.get_label_issues(5)["sample_id"] == table["sample_id"][:5]
    with pytest.warns(FutureWarning, match="get_label_issues"):
        rows = trainer.get_suspect_samples(8)
    assert [r["id"] for r in rows] == table["sample_id"][:8]
    assert len(rows) == 8
    assert all(r["text"] == f"row {r['id']}" and r["label"] == int(noisy[r["id"]]) for r in rows)
    assert np.mean([r["id"] < 8 for r in rows]) >= 0.75
