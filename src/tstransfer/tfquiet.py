"""TensorFlow imported without its start-up noise, for the commands a person types.

Importing TensorFlow writes a dozen lines to the process's stderr before anything of ours
runs: absl's "All log messages before absl::InitializeLog()", oneDNN's notice, CUDA's
"could not find cuda drivers", the CPU-instructions note, and at the first device scan
"failed call to cuInit". They come from C++ straight to
file descriptor 2, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach the ones written before
absl is initialised, and Python's ``sys.stderr`` does not see them at all. A command's
one-line ``error: ...`` drowns in them. :func:`import_tensorflow` imports TensorFlow with
descriptor 2 pointed at a temporary file, and shows what was written there only if the
import fails (then it is the reason). The training jobs do not use it: their logs are
files, where the lines say which TensorFlow ran.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Point descriptor 2 at a temporary file for the block; replay the file to the real
    stderr if the block raises, and drop it otherwise."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                sink.seek(0)
                os.write(2, sink.read())
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras) quietly: its C++ start-up lines hidden, its Python
    logger at errors only (no retracing warnings)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # what absl prints after initialisation
    with native_stderr_hidden():
        import keras  # noqa: F401
        import tensorflow

        # the device scan, where a machine without a GPU hears "failed call to cuInit"
        tensorflow.config.list_physical_devices()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


__all__ = ["import_tensorflow", "native_stderr_hidden"]
