"""GEKO state inside HF checkpoint folders: one `geko_state.npz`, written atomically, version-stamped.

The file sits next to HF's own files in every `checkpoint-N/` (and in output_dir after `save_model`). It is
written before HF writes `trainer_state.json`, so a folder with `trainer_state.json` has a complete GEKO
state; the write goes to a temporary file renamed into place, so a killed save never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile

import numpy as np

STATE_FILE = "geko_state.npz"
FORMAT = 1
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


# -- (de)serialisation: JSON metadata + the numpy arrays it references ---------------------------------
def save_geko_state(folder: str, payload: dict) -> str:
    """Write payload (nested dicts/lists of JSON values and numpy arrays) to folder/geko_state.npz, atomically."""
    arrays: dict[str, np.ndarray] = {}

    def encode(o):
        if isinstance(o, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = o
            return {"__array__": key}
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"cannot store {type(o).__name__} in the GEKO state")

    meta = json.dumps({**payload, "format": FORMAT}, default=encode)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, STATE_FILE)
    tmp = os.path.join(folder, f".{STATE_FILE}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.array(meta), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)  # atomic on POSIX: readers see the old file or the new one, never a mix
    _fsync_dir(folder)
    return final


class StateFileError(ValueError):
    """A geko_state.npz that cannot be read: damaged, truncated, or not written by this geko_hf."""


def load_geko_state(folder: str) -> dict:
    """The payload saved in folder (a checkpoint-N/ or an output_dir); clear errors for missing/damaged files."""
    path = folder if folder.endswith(".npz") else os.path.join(folder, STATE_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No GEKO state in {folder!r} (expected {STATE_FILE}). Point at an output_dir or checkpoint-N/ folder "
            "written by a GEKO trainer."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = str(z["meta"])
    except (zipfile.BadZipFile, ValueError, OSError, KeyError) as e:
        raise StateFileError(f"GEKO state file {path!r} is damaged ({e}); resume from an earlier checkpoint.") from e

    def decode(o):
        return arrays[o["__array__"]] if set(o) == {"__array__"} else o

    try:
        payload = json.loads(meta, object_hook=decode)
    except (json.JSONDecodeError, KeyError) as e:
        raise StateFileError(f"GEKO state file {path!r} is damaged ({e}); resume from an earlier checkpoint.") from e
    if not isinstance(payload, dict) or "format" not in payload:
        # Every geko_hf release stamps its files (format 1 since 0.1); no older layout exists to migrate from.
        raise StateFileError(
            f"{path!r} has no GEKO state format stamp, so it was not written by geko_hf: resume from a checkpoint "
            "saved by a GEKO trainer, or start without resuming."
        )
    if int(payload.get("format", 0)) > FORMAT:
        raise StateFileError(
            f"{path!r} was written by a newer geko_hf (state format {payload['format']}, geko_hf "
            f"{payload.get('geko_hf_version', '?')}); this is geko_hf with format {FORMAT}: upgrade geko_hf."
        )
    return payload


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- which checkpoint ------------------------------------------------------------------------------
def is_complete_checkpoint(folder: str, need_geko: bool = True) -> bool:
    """HF writes trainer_state.json last; GEKO writes its state before that."""
    ok = os.path.isfile(os.path.join(folder, "trainer_state.json"))
    return ok and (not need_geko or os.path.isfile(os.path.join(folder, STATE_FILE)))


def newest_complete_checkpoint(output_dir: str, need_geko: bool = True) -> str | None:
    """Like HF's get_last_checkpoint, but skips folders a killed save left incomplete."""
    if not os.path.isdir(output_dir):
        return None
    found = [(int(m.group(1)), name) for name in os.listdir(output_dir) if (m := _CHECKPOINT_RE.match(name))]
    for _, name in sorted(found, reverse=True):
        folder = os.path.join(output_dir, name)
        if is_complete_checkpoint(folder, need_geko):
            return folder
    return None


# -- dataset fingerprint ---------------------------------------------------------------------------
def dataset_fingerprint(dataset) -> dict:
    """Length plus a hash of a few rows: cheap, deterministic across processes, catches a swapped dataset. A
    datasets.Dataset's rows are hashed as stored, not through a set_transform / with_transform, which may be a
    random augmentation (a new hash on every read: the resume was refused as another dataset)."""
    if type(dataset).__name__ == "IndexedDataset":  # GEKO's id wrapper (ids.py; by name: this module has no torch)
        dataset = dataset.dataset
    if getattr(dataset, "format", {}).get("type") == "custom":
        dataset = dataset.with_format(None)
    n = len(dataset)
    h = hashlib.sha1(str(n).encode())
    for i in sorted({0, n // 2, n - 1}):
        h.update(_row_bytes(dataset[i]))
    return {"num_samples": n, "rows_sha1": h.hexdigest()[:16]}


def _row_bytes(row) -> bytes:
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if k != "geko_sample_id"}
        return repr(sorted((k, _plain(v)) for k, v in row.items())).encode()
    return repr(_plain(row)).encode()


def _plain(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    return v
