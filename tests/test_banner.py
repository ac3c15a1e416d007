"""The start banner and end summary: printed once from the Python API (GEKOTrainer, callback), silenced by
log_bucket_stats=False; the freeze rule in the words of the config."""

from geko_hf.core.config import GEKO_V2, GEKOConfig


def test_banner_states_the_freeze_rule_in_use():
    from geko_hf.report.banner import freeze_rule

    assert freeze_rule(GEKOConfig()) == "freeze at conf > 0.85"
    assert freeze_rule(GEKO_V2) == "freeze at margin > 0.5, 2 correct in a row, stuck after 2 wrong"


def test_banner_states_what_an_epoch_spends():
    from geko_hf.report.banner import _spend

    assert _spend(GEKOConfig()) == ", LIGHT rate 0.5"
    assert _spend(GEKOConfig(light_sample_rate=1.0)) == ""
    assert _spend(GEKOConfig(target_budget=0.6)) == ", budget 60% of the full-data passes an epoch"


def test_python_api_prints_banner_and_summary_once_and_log_bucket_stats_silences_them(tmp_path, capsys):
    from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset

    from geko_hf import GEKOTrainer

    for stats in (True, False):
        trainer = GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path / str(stats), num_train_epochs=2,
                                                                gradient_accumulation_steps=2),
                              train_dataset=toy_lm_dataset(32), geko_config=GEKOConfig(log_bucket_stats=stats))
        capsys.readouterr()
        trainer.train()
        out = capsys.readouterr().out
        if not stats:
            assert "GEKO training" not in out
            continue
        assert out.count("GEKO training\n") == 1 and out.count("GEKO training complete") == 1
        assert "Samples            : 32" in out and "= 16 per optimizer step" in out  # 8 x 2 x 1
        assert "Curriculum         : OFF" in out and "Grad checkpointing : off" in out
        assert "Optimizer          : adamw_torch" in out
        rep = trainer.get_efficiency_report()
        assert f"({rep['forward_sample_passes']:,} of {rep['full_data']['forward_sample_passes']:,}" in out
        assert "Average loss" in out
