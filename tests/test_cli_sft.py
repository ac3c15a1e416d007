"""`geko-hf sft`: `trl sft`'s flags plus GEKO's, an offline run on a tiny model, and the report's text of samples."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("reasoning_gym")

from geko_hf.cli import main  # noqa: E402
from geko_hf.report.text import format_hard  # noqa: E402
from geko_hf.cli.sft import _prompt_answer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_help_lists_trl_and_geko_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["sft", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model_name_or_path", "--dataset_name", "--dataset_train_split", "--use_peft", "--lora_r",
                 "--lora_target_modules", "--assistant_only_loss", "--max_length", "--packing", "--geko_preset",
                 "--geko_light_sample_rate", "--num_train_epochs"):
        assert flag in out, flag


def test_sft_runs_offline_on_a_tiny_model_and_leaves_report_and_plot(tmp_path, capsys):
    out_dir = tmp_path / "sft"
    code = main(["sft", "--tiny_model", "--n_train", "16", "--n_eval", "8", "--num_train_epochs", "1",
                 "--per_device_train_batch_size", "8", "--bf16", "false", "--disable_tqdm", "true",
                 "--output_dir", str(out_dir), "--geko_preset", "balanced"])
    assert code == 0
    report = json.loads((out_dir / "geko_report.json").read_text())
    assert report["command"] == "sft" and report["num_train"] == 16
    assert report["efficiency"]["forward_sample_passes"] == 16
    assert report["geko_config"]["bucket_weights"] == [3.0, 2.0, 1.0]  # the preset reached the trainer
    assert "eval_loss" in report["eval"]
    assert (out_dir / "geko_buckets.png").stat().st_size > 10_000
    texts = [json.loads(line) for line in (out_dir / "geko_train_texts.jsonl").read_text().splitlines()]
    assert len(texts) == 16 and texts[0]["prompt"].startswith("user: ") and texts[0]["answer"].startswith("assistant:")
    assert "Training Complete" in capsys.readouterr().out
    assert main(["report", str(out_dir), "--no_plot"]) == 0  # the report command reads an sft folder too


def test_a_trl_sft_command_line_parses_and_streaming_is_refused():
    # TRL's ScriptArguments has dataset_streaming and ignore_bias_buffers: before, both were unknown flags
    from geko_hf.cli.sft import load_sft_data, parse_sft_args

    sa, _, _ = parse_sft_args(["--dataset_name", "x.jsonl", "--ignore_bias_buffers", "true",
                               "--dataset_streaming", "true"])
    with pytest.raises(ValueError, match="--dataset_streaming true: .* Drop the flag"):
        load_sft_data(sa)
    _, args, _ = parse_sft_args(["--geko_use_curriculum"])  # a bare GEKO bool flag means true, as --bf16
    assert args.geko_use_curriculum is True


def test_own_data_is_used_whole_unless_capped(tmp_path):
    # before: --n_train defaulted to 96 and cut any dataset to its first 96 rows
    from geko_hf.cli.sft import load_sft_data, parse_sft_args

    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"{i} + 1 =", "completion": str(i + 1)}) + "\n" for i in range(120)))
    sa, _, _ = parse_sft_args(["--dataset_name", str(path)])
    assert len(load_sft_data(sa)[0]) == 120
    sa, _, _ = parse_sft_args(["--dataset_name", str(path), "--n_train", "50"])
    assert len(load_sft_data(sa)[0]) == 50


def test_resume_from_checkpoint_reaches_the_trainer_and_the_state_is_saved(tmp_path, monkeypatch):
    # before: --resume_from_checkpoint was parsed and dropped (trainer.train() without it), and no
    # trainer_state.json was written, so `geko-hf report` had no loss or held-out metric to show
    from geko_hf.hf.sft import GEKOSFTTrainer

    seen = []
    train = GEKOSFTTrainer.train

    def spy(self, resume_from_checkpoint=None, **kw):
        seen.append(resume_from_checkpoint)
        return train(self, **kw)  # the run itself starts fresh: the flag's arrival is what is checked

    monkeypatch.setattr(GEKOSFTTrainer, "train", spy)
    out_dir = tmp_path / "sft"
    assert main(["sft", "--tiny_model", "--n_train", "16", "--n_eval", "8", "--num_train_epochs", "1",
                 "--per_device_train_batch_size", "8", "--bf16", "false", "--disable_tqdm", "true",
                 "--output_dir", str(out_dir), "--resume_from_checkpoint", "last"]) == 0
    assert seen == [True]
    assert (out_dir / "trainer_state.json").is_file()
    # geko-hf sft reports the top label issues like geko-hf train (one shared run_outcome, issue 32)
    report = json.loads((out_dir / "geko_report.json").read_text())
    assert report["command"] == "sft" and len(report["label_issues"]) == 10 and "prompt" in report["label_issues"][0]


def test_hard_samples_are_shown_as_prompt_and_answer():
    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2 ="},
                        {"role": "assistant", "content": "5"}]}
    shown = _prompt_answer(row)
    assert shown == {"prompt": "system: Be brief. | user: 2 + 2 =", "answer": "assistant: 5"}
    text = format_hard([{"id": 3, "confidence": 0.9, "loss": 2.0, "times_seen": 3, **shown}], 1)
    assert "prompt: system: Be brief. | user: 2 + 2 =" in text and "answer: assistant: 5" in text
