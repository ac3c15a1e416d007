"""`GEKOTrainingArguments`: `transformers.TrainingArguments` plus every GEKO field, prefixed `geko_`.

The GEKO fields are generated from `GEKOConfig`, so the two can never drift apart, and the same mixin
composes with TRL's `SFTConfig` (see `sft.py`). `HfArgumentParser` shows each one as `--geko_<name>`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..core.config import PRESETS, GEKOConfig, get_preset

PREFIX = "geko_"


def _config_fields():
    """One `geko_<name>` field per GEKOConfig field. Defaults are None ("not set"), so a flag that restores a
    default on top of a preset still applies; the help text states the real default."""
    hints = typing.get_type_hints(GEKOConfig)
    defaults = GEKOConfig()
    out = []
    for f in dataclasses.fields(GEKOConfig):
        shown = getattr(defaults, f.name)
        shown = " ".join(f"{x:g}" for x in shown) if isinstance(shown, list) else shown
        meta = {"help": f"{f.metadata['help']} Default: {shown}."}
        out.append((PREFIX + f.name, typing.Optional[hints[f.name]], field(default=None, metadata=meta)))
    return out


_PRESET_FIELD = (
    "geko_preset",
    typing.Optional[str],
    field(
        default=None,
        metadata={
            "help": f"Start from a named GEKO preset ({', '.join(sorted(PRESETS))}); any geko_ field given "
            "overrides it."
        },
    ),
)

GEKOArguments = dataclasses.make_dataclass("GEKOArguments", [_PRESET_FIELD, *_config_fields()])
GEKOArguments.__doc__ = "The GEKO fields as a dataclass mixin (`geko_<GEKOConfig field>`), for HF argument classes."


def geko_config_from_args(args) -> GEKOConfig:
    """Build the GEKOConfig an argument object describes: the preset (or defaults), then every field set."""
    try:
        base = get_preset(args.geko_preset) if getattr(args, "geko_preset", None) else GEKOConfig()
    except ValueError as e:
        raise ValueError(f"`geko_preset`: {str(e)[0].lower()}{str(e)[1:]}") from None
    changes = {}
    for f in dataclasses.fields(GEKOConfig):
        value = getattr(args, PREFIX + f.name, None)
        if value is not None:
            changes[f.name] = list(value) if isinstance(value, tuple) else value
    try:
        return base.replace(**changes)
    except ValueError as e:  # re-word the field name as the user typed it
        msg = str(e)
        for f in dataclasses.fields(GEKOConfig):
            msg = msg.replace(f"`{f.name}`", f"`{PREFIX}{f.name}`")
        raise ValueError(msg) from None


def allow_bare_bool_flags(parser):
    """`--geko_use_curriculum` alone means true, as `--bf16` does. HfArgumentParser makes a bool flag's value
    optional only when its default is not None, and the geko_ defaults are None ("not set"); argparse offers no
    public way to change an added argument, so its actions are edited in place."""
    bools = {PREFIX + name for name, hint in typing.get_type_hints(GEKOConfig).items() if hint is bool}
    for action in parser._actions:
        if action.dest in bools:
            action.nargs, action.const = "?", True
    return parser


@dataclass
class GEKOTrainingArguments(TrainingArguments, GEKOArguments):
    """`TrainingArguments` + GEKO. Every `GEKOConfig` field is here as `geko_<name>` (CLI `--geko_<name>`)."""

    def __post_init__(self):
        super().__post_init__()
        self.geko_config = geko_config_from_args(self)  # validates; errors name the geko_ field
