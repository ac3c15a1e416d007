"""What GEKO requires of transformers fails at trainer init, in one sentence, when a release changes it.

Each private Trainer method GEKO overrides is simulated changed (a Trainer subclass with another signature, or the
method removed) and must be refused when the trainer is built, naming the method and the supported range; the
version range itself and the order of set_initial_training_values' result are checked the same way.
"""

from __future__ import annotations

import sys

import pytest
from transformers import Trainer

from geko_hf import GEKOCallback, GEKOTrainer
from geko_hf.hf.contract import PRIVATE_METHODS, TRANSFORMERS_RANGE, check_transformers_version, range_text

from hf_helpers import make_args, tiny_gpt2, toy_lm_dataset


def _changed(name: str, params: str) -> type:
    """A Trainer whose private method `name` takes other parameters (as a future release might)."""
    namespace: dict = {}
    exec(f"def {name}(self, {params}):\n    raise AssertionError('never called')", namespace)
    return type("ChangedTrainer", (Trainer,), {name: namespace[name]})


@pytest.mark.parametrize("name", sorted(PRIVATE_METHODS))
def test_changed_private_signature_fails_at_init(tmp_path, name):
    changed = _changed(name, "other_argument")
    with pytest.raises(RuntimeError, match=rf"Trainer\.{name} takes \(other_argument\) where GEKO expects"):
        changed(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset(),
                callbacks=[GEKOCallback()])


@pytest.mark.parametrize("name", sorted(PRIVATE_METHODS))
def test_changed_private_signature_fails_on_the_geko_trainer_path_too(tmp_path, name):
    changed = type("ChangedGEKOTrainer", (GEKOTrainer, _changed(name, "other_argument")), {})
    with pytest.raises(RuntimeError, match=rf"supports transformers {range_text()}.*Trainer\.{name} takes"):
        changed(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset())


def test_removed_private_method_fails_at_init(tmp_path, monkeypatch):
    monkeypatch.delattr(Trainer, "_init_training_state")  # as in transformers < 5.3
    with pytest.raises(RuntimeError, match=r"Trainer\._init_training_state does not exist"):
        GEKOTrainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset())


@pytest.mark.parametrize("version", ["4.57.6", "5.2.0", "6.0.0"])
def test_version_outside_the_range_fails_at_init(tmp_path, monkeypatch, version):
    # (sys.modules' entry, not the `transformers` imported above: some releases replace their lazy module on import)
    monkeypatch.setattr(sys.modules["transformers"], "__version__", version)
    with pytest.raises(RuntimeError, match=rf"supports transformers {range_text()} and this is transformers "
                                           rf"{version}: .*pip install 'transformers{range_text()}'"):
        Trainer(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset(),
                callbacks=[GEKOCallback()])


def test_installed_version_is_inside_the_range():
    check_transformers_version()  # the suite runs on the range's ends (.ci/run): both must pass this
    assert TRANSFORMERS_RANGE[0].startswith(">=")


def _reordered_initial_values(self, args, dataloader):
    values = list(Trainer.set_initial_training_values(self, args, dataloader))
    values[1], values[2] = values[2], values[1]  # a release that reorders the result
    return tuple(values)


def test_reordered_initial_values_fail_at_train_start(tmp_path):
    reordered = type("Reordered", (Trainer,), {"set_initial_training_values": _reordered_initial_values})
    trainer = reordered(model=tiny_gpt2(), args=make_args(tmp_path), train_dataset=toy_lm_dataset(n=64),
                        callbacks=[GEKOCallback()])
    with pytest.raises(RuntimeError, match=r"set_initial_training_values returned 64 update steps"):
        trainer.train()


def test_initial_values_order_is_the_documented_one(tmp_path):
    """Pins the fact GEKO relies on: (epochs, update steps per epoch, ..., batches per epoch, max_steps)."""
    trainer = Trainer(model=tiny_gpt2(), args=make_args(tmp_path, gradient_accumulation_steps=2, num_train_epochs=3),
                      train_dataset=toy_lm_dataset(n=40))
    values = trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())
    assert len(values) == 7
    assert (values[0], values[1], values[5], values[6]) == (3, 3, 5, 9)  # 40 rows / batch 8 = 5 batches, GA 2


def test_pyproject_declares_the_checked_range():
    """The range refused at init is the range pip is told (and the one .ci/run tests at both ends)."""
    import os
    import re

    text = open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")).read()
    declared = re.search(r'"transformers([^"]*)"', text).group(1)
    assert declared == range_text()
    lowest = open(os.path.join(os.path.dirname(__file__), "..", "constraints", "lowest.txt")).read()
    assert f"transformers=={TRANSFORMERS_RANGE[0][2:]}.0" in lowest
