"""GEKOTrainingArguments on the command line: every GEKOConfig field as --geko_<name>, presets, errors, --help."""

import dataclasses
import typing

import pytest
from transformers import HfArgumentParser

from geko_hf.core.config import BUDGET_MODES, MASTERY_RULES, PRESETS, Q_VALUE_MODES, GEKOConfig, get_preset
from geko_hf.hf.training_args import GEKOTrainingArguments

FIELDS = dataclasses.fields(GEKOConfig)
HINTS = typing.get_type_hints(GEKOConfig)


def _non_default(f: dataclasses.Field):
    """(CLI tokens, expected config value): a valid value different from the default, built from the type."""
    default = getattr(GEKOConfig(), f.name)
    hint = HINTS[f.name]
    if hint is bool:
        value = not default
        return [str(value).lower()], value
    if hint is int:
        value = default + 2
        return [str(value)], value
    if hint is float:
        # +0.05 stays valid for every float field below 0.95 (focus_confidence 0.65 stays below
        # freeze_confidence 0.85); a rate at 1.0 moves down instead.
        value = default + 0.05 if default + 0.05 <= 1.0 else default - 0.05
        return [repr(value)], value
    if typing.get_origin(hint) is list:
        value = [float(x) for x in (5, 2, 1)]
        assert value != default
        return [str(x) for x in value], value
    if f.name == "q_value_mode":
        value = next(m for m in Q_VALUE_MODES if m != default)
        return [value], value
    if f.name == "epoch_budget":
        value = next(m for m in BUDGET_MODES if m != default)
        return [value], value
    if f.name == "mastery":
        value = next(m for m in MASTERY_RULES if m != default)
        return [value], value
    if f.name == "stratify_by":
        return ["label"], "label"
    if f.name == "target_budget":
        return ["0.6"], 0.6
    if f.name == "policy":
        return ["observe"], "observe"
    raise AssertionError(f"no non-default CLI value for new GEKOConfig field {f.name!r} ({hint}); add one here")


def _parse(argv, tmp_path):
    parser = HfArgumentParser(GEKOTrainingArguments)
    (args,) = parser.parse_args_into_dataclasses(
        args=["--output_dir", str(tmp_path), "--use_cpu", "true", "--report_to", "none", *argv]
    )
    return args


def test_defaults_without_geko_flags(tmp_path):
    args = _parse([], tmp_path)
    assert args.geko_config == GEKOConfig()
    assert args.geko_preset is None


@pytest.mark.parametrize("f", FIELDS, ids=[f.name for f in FIELDS])
def test_every_field_parses_from_cli(f, tmp_path):
    tokens, expected = _non_default(f)
    assert expected != getattr(GEKOConfig(), f.name)
    args = _parse([f"--geko_{f.name}", *tokens], tmp_path)
    assert getattr(args.geko_config, f.name) == expected
    assert getattr(args, f"geko_{f.name}") == expected
    # nothing else moved
    others = {g.name for g in FIELDS} - {f.name}
    for name in others:
        assert getattr(args.geko_config, name) == getattr(GEKOConfig(), name), name


def test_all_fields_together(tmp_path):
    argv, expected = [], {}
    for f in FIELDS:
        tokens, value = _non_default(f)
        argv += [f"--geko_{f.name}", *tokens]
        expected[f.name] = value
    args = _parse(argv, tmp_path)
    assert args.geko_config == GEKOConfig(**expected)


@pytest.mark.parametrize("flag", ["false", "False", "0", "no"])
def test_bool_false_spellings(flag, tmp_path):
    assert _parse(["--geko_use_curriculum", flag], tmp_path).geko_config.use_curriculum is False


def test_bucket_weights_three_numbers(tmp_path):
    args = _parse(["--geko_bucket_weights", "5", "2", "0"], tmp_path)
    assert args.geko_config.bucket_weights == [5.0, 2.0, 0.0]


def test_bucket_weights_wrong_count_raises(tmp_path):
    with pytest.raises(ValueError, match=r"geko_bucket_weights.*\[1\.0, 2\.0\]"):
        _parse(["--geko_bucket_weights", "1", "2"], tmp_path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_from_cli(name, tmp_path):
    args = _parse(["--geko_preset", name], tmp_path)
    assert args.geko_config == get_preset(name)


def test_preset_aggressive(tmp_path):
    cfg = _parse(["--geko_preset", "aggressive"], tmp_path).geko_config
    assert (cfg.freeze_confidence, cfg.freeze_quality, cfg.bucket_weights) == (0.90, 0.85, [5.0, 2.0, 0.0])
    assert cfg.use_curriculum is False


def test_preset_overridden_by_non_default_field(tmp_path):
    cfg = _parse(["--geko_preset", "aggressive", "--geko_max_times_seen", "7"], tmp_path).geko_config
    assert cfg == get_preset("aggressive").replace(max_times_seen=7)


def test_unknown_preset_raises(tmp_path):
    with pytest.raises(ValueError, match="`geko_preset`: unknown GEKO preset 'turbo'"):  # names the flag
        _parse(["--geko_preset", "turbo"], tmp_path)


def test_bad_value_names_geko_field_and_value(tmp_path):
    with pytest.raises(ValueError) as info:
        _parse(["--geko_freeze_confidence", "1.5"], tmp_path)
    msg = str(info.value)
    assert "geko_freeze_confidence" in msg
    assert "1.5" in msg


@pytest.mark.parametrize(
    "argv, field_name, value",
    [
        (["--geko_max_times_seen", "0"], "geko_max_times_seen", "0"),
        (["--geko_q_value_mode", "fast"], "geko_q_value_mode", "fast"),
        (["--geko_q_value_lr", "0"], "geko_q_value_lr", "0"),
        (["--geko_focus_confidence", "0.9"], "geko_focus_confidence", "0.9"),
    ],
)
def test_other_bad_values_name_geko_field(argv, field_name, value, tmp_path):
    with pytest.raises(ValueError) as info:
        _parse(argv, tmp_path)
    assert f"`{field_name}`" in str(info.value)
    assert value in str(info.value)


def test_help_mentions_every_geko_field():
    text = HfArgumentParser(GEKOTrainingArguments).format_help()
    for f in FIELDS:
        assert f"--geko_{f.name}" in text, f.name
    assert "--geko_preset" in text


def test_geko_fields_mirror_config():
    names = {f.name for f in dataclasses.fields(GEKOTrainingArguments) if f.name.startswith("geko_")}
    assert names == {f"geko_{f.name}" for f in FIELDS} | {"geko_preset"}


def test_direct_construction(tmp_path):
    args = GEKOTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", geko_max_times_seen=3)
    assert args.geko_config == GEKOConfig(max_times_seen=3)


def test_preset_overridden_by_default_valued_flag(tmp_path):
    cfg = _parse(["--geko_preset", "aggressive", "--geko_use_curriculum", "true"], tmp_path).geko_config
    assert cfg.use_curriculum is True


def test_an_unknown_policy_names_the_registered_ones(tmp_path):
    with pytest.raises(ValueError, match=r"`geko_policy` must be a registered selection policy \(.*observe.*\), got 'obsrve'"):
        _parse(["--geko_policy", "obsrve"], tmp_path)
