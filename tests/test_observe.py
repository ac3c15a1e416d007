"""Observe-only mode (policy "observe"): the stock Trainer's run, bit for bit, with the data map filled; the map as a
Dataset, its file, the filter, and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from geko_hf import GEKOCallback, GEKOConfig, GEKOTrainer
from geko_hf.training.data_map import DATA_MAP_FILE, DATA_MAP_PLOT
from hf_helpers import LRRecorder, tiny_gpt2, toy_lm_dataset

N = 36  # not a multiple of the batch: the stock Trainer's short last batch must be kept


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), per_device_train_batch_size=8, gradient_accumulation_steps=1,
                num_train_epochs=2, learning_rate=3e-2, report_to=[], use_cpu=True, logging_steps=1,
                save_strategy="no", disable_tqdm=True, lr_scheduler_type="linear", warmup_steps=2, seed=0)
    base.update(kw)
    return TrainingArguments(**base)


def _train(tmp_path, callbacks, **kw):
    recorder = LRRecorder()
    trainer = Trainer(model=tiny_gpt2(0), args=_args(tmp_path, **kw), train_dataset=toy_lm_dataset(n=N),
                      callbacks=[*callbacks, recorder])
    trainer.train()
    return trainer, recorder


@pytest.mark.parametrize("accumulation", [1, 3])
def test_observe_only_trains_exactly_as_the_stock_trainer(tmp_path, accumulation):
    stock, stock_lr = _train(tmp_path / "stock", [], gradient_accumulation_steps=accumulation)
    geko, geko_lr = _train(tmp_path / "geko", [GEKOCallback(observe_only=True)],
                           gradient_accumulation_steps=accumulation)
    for (name, a), (_, b) in zip(stock.model.named_parameters(), geko.model.named_parameters()):
        assert torch.equal(a, b), name
    assert geko_lr.lrs == stock_lr.lrs and geko.state.global_step == stock.state.global_step
    assert geko.state.epoch == stock.state.epoch
    stats = geko.geko.tracker.data_map.statistics()
    assert (stats["observations"] == 2).all()  # every sample, once an epoch
    assert geko.geko.report()["sample_passes_saved"] == 0.0


def test_observe_preset_and_policy_name_are_the_same_mode(tmp_path):
    for i, config in enumerate([GEKOConfig(policy="observe"), GEKOConfig().replace(policy="observe")]):
        trainer = GEKOTrainer(model=tiny_gpt2(0), args=_args(tmp_path / str(i)), train_dataset=toy_lm_dataset(n=N),
                              geko_config=config)
        trainer.train()
        assert trainer.geko.sampler is None and trainer.geko.tracker.follows_trainer


def test_data_map_dataset_file_and_plot(tmp_path):
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)], num_train_epochs=3)
    table = trainer.geko.data_map()
    assert len(table) == N and table["sample_id"] == list(range(N))
    for column in ("confidence", "variability", "correctness", "aum", "forgetting", "learned_epoch",
                   "observations", "region", "label_issue_rank", "label_issue_score", "bucket"):
        assert column in table.column_names, column
    frame = table.to_pandas()
    assert set(frame["region"]) <= {"easy-to-learn", "ambiguous", "hard-to-learn"}
    assert sorted(frame["label_issue_rank"]) == list(range(1, N + 1))
    # written at train end, atomically, and the file holds the same table
    import datasets

    saved = datasets.Dataset.from_parquet(str(tmp_path / DATA_MAP_FILE)).to_pandas()
    assert saved["confidence"].tolist() == pytest.approx(frame["confidence"].tolist())
    assert (tmp_path / DATA_MAP_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learnable_rows_are_easier_than_random_ones(tmp_path):
    """toy_lm_dataset: even rows are one fixed sequence (learnable), odd rows random tokens."""
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)], num_train_epochs=4)
    frame = trainer.geko.data_map().to_pandas()
    learnable = frame["sample_id"] % 2 == 0
    assert frame["confidence"][learnable].min() > frame["confidence"][~learnable].max()
    assert (frame["region"][~learnable] != "easy-to-learn").all()


def test_label_issues_and_filter(tmp_path):
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)])
    issues = trainer.geko.label_issues(k=5)
    assert issues["label_issue_rank"] == [1, 2, 3, 4, 5]
    train = toy_lm_dataset(n=N)
    kept = trainer.geko.filter(train, top_k_label_issues=5)
    assert len(kept) == N - 5
    dropped = set(issues["sample_id"])
    assert not any(kept[i]["input_ids"] == train[j]["input_ids"] and j in dropped and i == j for i, j in [])
    regions = trainer.geko.data_map().to_pandas()["region"]
    hard = int((regions == "hard-to-learn").sum())
    assert len(trainer.geko.filter(train, regions=["hard-to-learn"])) == N - hard
    with pytest.raises(ValueError, match="regions=.*'hard'.*not a data-map region"):
        trainer.geko.filter(train, regions=["hard"])
    with pytest.raises(ValueError, match="36 rows"):
        trainer.geko.filter(train.select(range(10)), regions=["ambiguous"])


def test_filter_drops_exactly_the_rows_chosen(tmp_path):
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)])
    train = toy_lm_dataset(n=N).add_column("row", list(range(N)))
    where = np.zeros(N, dtype=bool)
    where[[3, 7, 20]] = True
    kept = trainer.geko.filter(train, where=where)
    assert kept["row"] == [i for i in range(N) if i not in (3, 7, 20)]


def test_map_is_recorded_under_routing_too_and_says_how_many_observations(tmp_path):
    """With GEKO routing, skipped samples have fewer observations: the map says so and never repeats a value."""
    trainer = GEKOTrainer(model=tiny_gpt2(0), args=_args(tmp_path, num_train_epochs=6),
                          train_dataset=toy_lm_dataset(n=N))
    trainer.train()
    frame = trainer.geko.data_map().to_pandas()
    seen = trainer.geko.state.times_seen.astype(int)
    assert frame["observations"].tolist() == seen.tolist()  # one observation per training pass, no stale copies
    assert (frame["observations"] < 6).any()  # some samples were skipped (FREEZE)
    assert (frame["last_epoch"] < 5).any()


@pytest.mark.parametrize("policy", ["observe", "geko"])
def test_resume_mid_epoch_gives_the_same_map(tmp_path, policy):
    def run(folder, resume=None, save=True):
        args = _args(folder, num_train_epochs=3, save_strategy="steps" if save else "no", save_steps=4)
        t = GEKOTrainer(model=tiny_gpt2(0), args=args, train_dataset=toy_lm_dataset(n=N),
                        geko_config=GEKOConfig(policy=policy))
        t.train(resume_from_checkpoint=resume)
        return t

    straight = run(tmp_path / "a")
    resumed = run(tmp_path / "b", resume=str(tmp_path / "a" / "checkpoint-4"), save=False)
    a = straight.geko.tracker.data_map.state_dict()
    b = resumed.geko.tracker.data_map.state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for (name, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(p, q), name


def test_cli_report_data_map_prints_regions_with_texts_and_draws_the_map(tmp_path, capsys):
    import json

    from geko_hf.cli import report as cli_report
    from geko_hf.cli import run_files

    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)], save_strategy="epoch")
    with open(tmp_path / run_files.TEXTS_FILE, "w") as f:  # what `geko-hf train` writes next to its checkpoints
        for i in range(N):
            f.write(json.dumps({"id": i, "text": f"row {i} {'learnable' if i % 2 == 0 else 'noise'}"}) + "\n")
    checkpoint = tmp_path / f"checkpoint-{trainer.state.global_step}"
    out = cli_report.run([str(checkpoint), "--no_plot", "--data-map", "--top_k", "3"])
    printed = capsys.readouterr().out
    counts = out["data_map"]["counts"]
    assert sum(counts.values()) == N
    assert "Data map (Swayamdipta" in printed and "-- label issues" in printed
    assert " noise\n" in printed and " learnable\n" in printed  # examples come with their text
    assert (checkpoint / DATA_MAP_PLOT).read_bytes()[:4] == b"\x89PNG"
    easy = out["data_map"]["examples"]["easy-to-learn"]
    assert [r["confidence"] for r in easy] == sorted((r["confidence"] for r in easy), reverse=True)


def test_the_handle_before_training_says_what_to_do(tmp_path):
    trainer = GEKOTrainer(model=tiny_gpt2(0), args=_args(tmp_path), train_dataset=toy_lm_dataset(n=N))
    with pytest.raises(RuntimeError, match="call trainer.train"):
        trainer.geko.data_map()
    with pytest.raises(RuntimeError, match="resume_from_checkpoint"):
        trainer.geko.load(str(tmp_path))


def test_save_and_load_through_the_handle(tmp_path):
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)])
    before = trainer.geko.data_map().to_pandas()
    trainer.geko.save(str(tmp_path / "saved"))
    trainer.geko.tracker.data_map.update([0], 9, [5.0], [False], [-1.0])  # change it, then load it back
    trainer.geko.load(str(tmp_path / "saved"))
    after = trainer.geko.data_map().to_pandas()
    assert after["observations"].tolist() == before["observations"].tolist()
    assert after["confidence"].tolist() == pytest.approx(before["confidence"].tolist())


def test_observe_prints_the_map_not_buckets_and_logs_region_shares(tmp_path, capsys):
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)])
    out = capsys.readouterr().out
    assert "[GEKO] Epoch 1 data map: easy-to-learn" in out and "Partition" not in out
    assert "observe only: trains as the stock Trainer" in out and "efficiency report" not in out
    assert f"[GEKO] Data map of {N} samples: " in out and DATA_MAP_FILE in out
    logged = [e for e in trainer.state.log_history if "geko/ambiguous_share" in e]
    assert len(logged) == 2 and sum(logged[-1][f"geko/{k}_share"] for k in ("easy_to_learn", "ambiguous",
                                                                             "hard_to_learn")) == pytest.approx(1)


def test_one_label_issue_ranking_everywhere(tmp_path):
    """get_suspect_samples, trainer.geko.label_issues() and the data map's label_issue_rank serve one ranking."""
    trainer, _ = _train(tmp_path, [GEKOCallback(observe_only=True)])
    served = [r["id"] for r in trainer.get_suspect_samples(10)]
    assert served == trainer.geko.label_issues(10)["sample_id"]
