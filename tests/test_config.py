"""GEKOConfig: the seed's defaults, the presets, validation messages, dict round trip."""

import copy
import dataclasses
import math
import pickle
import re

import pytest

from geko_hf.core.config import (
    GEKO_AGGRESSIVE,
    GEKO_BALANCED,
    GEKO_CONSERVATIVE,
    GEKO_SEED,
    PRESETS,
    GEKO_SEED,
    GEKOConfig,
    get_preset,
)

# gekolib 0.3.0's defaults (its PyPI page's config table).
SEED_DEFAULTS = dict(
    freeze_confidence=0.85,
    freeze_quality=0.80,
    focus_confidence=0.60,
    bucket_weights=[3.0, 1.0, 0.0],
    use_curriculum=True,
    q_value_lr=0.1,
    min_q_for_freeze=0.8,
    q_value_loss_scale=10.0,
    repartition_every=1,
    log_bucket_stats=True,
    max_times_seen=50,
    prune_frozen_after=0,
)
# geko_hf's own fields.
GEKO_HF_DEFAULTS = dict(q_value_mode="auto", freeze_after_observations=1, q_value_init=0.5, quality_window=2,
                        epoch_budget="active")
# Where geko_hf's default departs from gekolib's, on measurement (README, "Performance"); GEKO_SEED keeps gekolib's.
CHANGED_DEFAULTS = dict(bucket_weights=[1.0, 1.0, 1.0], use_curriculum=False)


# -- defaults -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", sorted(SEED_DEFAULTS.items()))
def test_default_equals_seed_unless_changed_on_measurement(name, value):
    assert getattr(GEKOConfig(), name) == CHANGED_DEFAULTS.get(name, value)


@pytest.mark.parametrize("name, value", sorted(SEED_DEFAULTS.items()))
def test_seed_preset_is_gekolib_literally(name, value):
    assert getattr(GEKO_SEED, name) == value
    assert GEKO_SEED.q_value_mode == "seed" and GEKO_SEED.quality_window == 5


@pytest.mark.parametrize("name, value", sorted(GEKO_HF_DEFAULTS.items()))
def test_geko_hf_defaults(name, value):
    assert getattr(GEKOConfig(), name) == value


def test_every_seed_field_exists_and_every_field_has_help():
    names = {f.name for f in dataclasses.fields(GEKOConfig)}
    assert set(SEED_DEFAULTS) <= names
    for f in dataclasses.fields(GEKOConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"


def test_bucket_weights_default_is_not_shared():
    a, b = GEKOConfig(), GEKOConfig()
    a.bucket_weights[0] = 99.0
    assert b.bucket_weights == [1.0, 1.0, 1.0]


def test_bucket_weights_coerced_to_float_list():
    cfg = GEKOConfig(bucket_weights=(5, 2, 0))
    assert cfg.bucket_weights == [5.0, 2.0, 0.0]
    assert isinstance(cfg.bucket_weights, list) and all(type(w) is float for w in cfg.bucket_weights)


# -- presets ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset, name, confidence, quality, weights",
    [
        (GEKO_AGGRESSIVE, "aggressive", 0.90, 0.85, [5.0, 2.0, 0.0]),
        (GEKO_BALANCED, "balanced", 0.85, 0.80, [3.0, 2.0, 1.0]),
        (GEKO_CONSERVATIVE, "conservative", 0.80, 0.75, [2.0, 2.0, 1.0]),
    ],
)
def test_preset_values(preset, name, confidence, quality, weights):
    assert preset.freeze_confidence == confidence
    assert preset.freeze_quality == quality
    assert preset.bucket_weights == weights
    # the curriculum would replace the preset's weights, so presets switch it off
    assert preset.use_curriculum is False
    assert PRESETS[name] == preset
    assert get_preset(name) == preset


@pytest.mark.parametrize("name, value", sorted(SEED_DEFAULTS.items()))
def test_seed_preset_has_seed_defaults(name, value):
    assert getattr(GEKO_SEED, name) == value


def test_seed_preset_uses_seed_q_mode_and_window():
    assert GEKO_SEED.q_value_mode == "seed"
    assert GEKO_SEED.quality_window == 5  # gekolib: std of the last 5 losses
    assert get_preset("seed").effective_q_lr() == 0.1


def test_default_preset():
    assert get_preset("default") == GEKOConfig()


@pytest.mark.parametrize("name", ["AGGRESSIVE", "Aggressive", "aGgReSsIvE"])
def test_get_preset_case_insensitive(name):
    assert get_preset(name) == GEKO_AGGRESSIVE


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_get_preset_returns_independent_copy(name):
    before = copy.deepcopy(PRESETS[name])
    cfg = get_preset(name)
    assert cfg is not PRESETS[name]
    assert cfg.bucket_weights is not PRESETS[name].bucket_weights
    cfg.bucket_weights[0] = 42.0
    cfg.bucket_weights.append(1.0)
    cfg.freeze_confidence = 0.99
    cfg.use_curriculum = not cfg.use_curriculum
    assert PRESETS[name] == before
    assert get_preset(name) == before


def test_get_preset_unknown_name():
    with pytest.raises(ValueError, match=r"Unknown GEKO preset 'turbo'.*aggressive.*balanced.*conservative"):
        get_preset("turbo")


# -- validation: the message names the field, the value and the range -----------------------------------------
@pytest.mark.parametrize("name", ["freeze_confidence", "min_q_for_freeze"])
@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan, math.inf])
def test_validate_unit_open_interval(name, bad):
    with pytest.raises(ValueError, match=rf"`{name}` must be in \(0\.0, 1\.0\], got {re.escape(repr(bad))}"):
        GEKOConfig(**{name: bad})


@pytest.mark.parametrize("bad", [0.0, -0.1, math.nan])
def test_validate_focus_confidence_range(bad):
    with pytest.raises(ValueError, match=rf"`focus_confidence` must be in \(0\.0, 1\.0\], got {re.escape(repr(bad))}"):
        GEKOConfig(focus_confidence=bad)


@pytest.mark.parametrize("focus, freeze", [(0.85, 0.85), (0.9, 0.85), (1.0, 0.85)])
def test_validate_focus_below_freeze(focus, freeze):
    with pytest.raises(ValueError, match=rf"`focus_confidence` \({focus}\) must be below `freeze_confidence` \({freeze}\)"):
        GEKOConfig(focus_confidence=focus, freeze_confidence=freeze)


@pytest.mark.parametrize("bad", [1.5, 1.0000001, math.nan, math.inf, -math.inf])
def test_validate_freeze_quality(bad):
    with pytest.raises(ValueError, match=rf"`freeze_quality` must be in \[-inf, 1\.0\], got {re.escape(repr(bad))}"):
        GEKOConfig(freeze_quality=bad)


def test_freeze_quality_may_be_negative():
    # quality = 1 - std can be negative; a negative threshold is legal.
    assert GEKOConfig(freeze_quality=-2.0).freeze_quality == -2.0


@pytest.mark.parametrize("bad", [-0.1, 1.1, math.nan])
def test_validate_q_value_init(bad):
    with pytest.raises(ValueError, match=rf"`q_value_init` must be in \[0\.0, 1\.0\], got {re.escape(repr(bad))}"):
        GEKOConfig(q_value_init=bad)


@pytest.mark.parametrize("ok", [0.0, 1.0])
def test_q_value_init_closed_interval(ok):
    assert GEKOConfig(q_value_init=ok).q_value_init == ok


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, math.nan])
def test_validate_q_value_lr(bad):
    with pytest.raises(ValueError, match=rf"`q_value_lr` must be in \(0\.0, 1\.0\], got {re.escape(repr(bad))}"):
        GEKOConfig(q_value_lr=bad)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, "10"])
def test_validate_q_value_loss_scale(bad):
    with pytest.raises(ValueError, match=rf"`q_value_loss_scale` must be a positive number, got {re.escape(repr(bad))}"):
        GEKOConfig(q_value_loss_scale=bad)


@pytest.mark.parametrize("name", ["repartition_every", "max_times_seen", "freeze_after_observations"])
@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, True, "3"])
def test_validate_positive_ints(name, bad):
    with pytest.raises(ValueError, match=rf"`{name}` must be an integer >= 1, got {re.escape(repr(bad))}"):
        GEKOConfig(**{name: bad})


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_validate_quality_window_int(bad):
    with pytest.raises(ValueError, match=rf"`quality_window` must be an integer >= 1, got {re.escape(repr(bad))}"):
        GEKOConfig(quality_window=bad)


@pytest.mark.parametrize("bad", [6, 100])
def test_validate_quality_window_max(bad):
    with pytest.raises(ValueError, match=rf"`quality_window` must be in \[1, 5\], got {bad}"):
        GEKOConfig(quality_window=bad)


@pytest.mark.parametrize("ok", [1, 5])
def test_quality_window_bounds_legal(ok):
    assert GEKOConfig(quality_window=ok).quality_window == ok


def test_validate_max_times_seen_fits_uint16():
    assert GEKOConfig(max_times_seen=65535).max_times_seen == 65535
    with pytest.raises(ValueError, match=r"`max_times_seen` must be <= 65535 \(stored as uint16\), got 65536"):
        GEKOConfig(max_times_seen=65536)


@pytest.mark.parametrize("bad", [-1, 0.5, None])
def test_validate_prune_frozen_after(bad):
    with pytest.raises(ValueError, match=rf"`prune_frozen_after` must be an integer >= 0, got {re.escape(repr(bad))}"):
        GEKOConfig(prune_frozen_after=bad)


def test_prune_frozen_after_zero_is_disabled_and_legal():
    assert GEKOConfig(prune_frozen_after=0).prune_frozen_after == 0


@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [-1.0, 1.0, 1.0], [0.0, 0.0, 0.0],
                                 [math.nan, 1.0, 1.0], [math.inf, 1.0, 1.0]])
def test_validate_bucket_weights(bad):
    with pytest.raises(ValueError, match=rf"`bucket_weights` must be three finite non-negative numbers .*got {re.escape(repr([float(x) for x in bad]))}"):
        GEKOConfig(bucket_weights=bad)


@pytest.mark.parametrize("bad", ["fast", "AUTO", ""])
def test_validate_q_value_mode(bad):
    with pytest.raises(ValueError, match=rf"`q_value_mode` must be one of \('auto', 'seed'\), got {re.escape(repr(bad))}"):
        GEKOConfig(q_value_mode=bad)


@pytest.mark.parametrize("name", ["use_curriculum", "log_bucket_stats"])
def test_validate_bool_fields(name):
    with pytest.raises(ValueError, match=rf"`{name}`.*'false'"):
        GEKOConfig(**{name: "false"})


def test_validate_runs_again_after_mutation():
    cfg = GEKOConfig()
    cfg.freeze_confidence = 2.0
    with pytest.raises(ValueError, match=r"`freeze_confidence`.*got 2\.0"):
        cfg.validate()


def test_replace_validates():
    with pytest.raises(ValueError, match=r"`max_times_seen`.*got 0"):
        GEKOConfig().replace(max_times_seen=0)
    assert GEKOConfig().replace(max_times_seen=3).max_times_seen == 3


# -- round trips --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [GEKOConfig(), GEKO_AGGRESSIVE, GEKO_BALANCED, GEKO_CONSERVATIVE, GEKO_SEED,
                                 GEKOConfig(prune_frozen_after=2, freeze_after_observations=3, q_value_init=0.2)])
def test_to_dict_from_dict_round_trip(cfg):
    d = cfg.to_dict()
    assert isinstance(d, dict)
    assert set(d) == {f.name for f in dataclasses.fields(GEKOConfig)}
    back = GEKOConfig.from_dict(d)
    assert back == cfg
    assert back.bucket_weights is not cfg.bucket_weights


def test_to_dict_is_a_copy():
    cfg = GEKOConfig()
    d = cfg.to_dict()
    d["bucket_weights"][0] = 7.0
    assert cfg.bucket_weights == [1.0, 1.0, 1.0]


def test_from_dict_ignores_unknown_keys():
    d = GEKO_AGGRESSIVE.to_dict()
    d.update({"some_future_field": 1, "dtype": "bf16"})
    assert GEKOConfig.from_dict(d) == GEKO_AGGRESSIVE


def test_from_dict_partial_uses_defaults():
    assert GEKOConfig.from_dict({"max_times_seen": 7}) == GEKOConfig(max_times_seen=7)


def test_from_dict_validates():
    with pytest.raises(ValueError, match=r"`freeze_confidence`.*1\.5"):
        GEKOConfig.from_dict({"freeze_confidence": 1.5})


def test_pickle_and_deepcopy_round_trip():
    cfg = GEKOConfig(bucket_weights=[1, 2, 3], prune_frozen_after=4)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert copy.deepcopy(cfg) == cfg


def test_the_docstring_groups_every_field():
    """GEKOConfig's docstring lists each field under one headed section (TRL's SFTConfig docstring style): a new
    field must be placed, and a removed one leaves no stale name."""
    import dataclasses
    import re

    doc = GEKOConfig.__doc__
    sections = doc[doc.index("    > "):]
    lines = [line for line in sections.splitlines() if not line.strip().startswith(">")]
    listed = re.findall(r"\b([a-z][a-z0-9_]+)\b", "\n".join(lines))
    names = [f.name for f in dataclasses.fields(GEKOConfig)]
    assert sorted(listed) == sorted(names)
