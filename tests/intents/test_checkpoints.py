"""Reading PyTorch checkpoints without torch: the tensors come back, nothing else runs."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from intents.checkpoints import CheckpointError, load_state_dict


class _FakeStorage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key = key
        self.data = data


def _write_checkpoint(
    path: Path, tensors: dict[str, tuple[_FakeStorage, int, tuple[int, ...], tuple[int, ...]]]
) -> None:
    """A zip in torch's layout, pickled with stand-ins registered as ``torch.*`` names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("never called while pickling")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]

    class Tensor:
        def __init__(self, storage: _FakeStorage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
            self.args = (storage, offset, size, stride, False, OrderedDict())

        def __reduce__(self) -> Any:
            return (_rebuild_tensor_v2, self.args)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _FakeStorage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.data.size)
            return None

    state = OrderedDict((name, Tensor(*args)) for name, args in tensors.items())
    buffer = io.BytesIO()
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        Pickler(buffer, protocol=2).dump(state)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        for storage in {id(a[0]): a[0] for a in tensors.values()}.values():
            archive.writestr(f"archive/data/{storage.key}", storage.data.astype(np.float32).tobytes())


def test_tensors_come_back_with_their_offsets_and_strides(tmp_path: Path) -> None:
    shared = _FakeStorage("0", np.arange(12, dtype=np.float32))
    path = tmp_path / "pytorch_model.bin"
    _write_checkpoint(
        path,
        {
            "dense.weight": (shared, 0, (3, 4), (4, 1)),
            "dense.weight_t": (shared, 0, (4, 3), (1, 4)),  # a transposed view of the same storage
            "bias": (shared, 8, (4,), (1,)),
        },
    )
    state = load_state_dict(path)
    assert list(state) == ["dense.weight", "dense.weight_t", "bias"]
    np.testing.assert_array_equal(state["dense.weight"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(state["dense.weight_t"], np.arange(12).reshape(3, 4).T)
    np.testing.assert_array_equal(state["bias"], [8, 9, 10, 11])
    assert state["bias"].dtype == np.float32 and state["bias"].flags.owndata


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_pickle_that_calls_anything_else_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match="refusing to load pathlib"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="model.bin"):
        load_state_dict(path)


def test_a_zip_without_a_state_dict_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/readme.txt", "hello")
    with pytest.raises(CheckpointError, match="not a zip-format PyTorch checkpoint"):
        load_state_dict(path)
