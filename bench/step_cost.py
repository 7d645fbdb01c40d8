"""CPU cost of one training step, and what XLA or bfloat16 would change (issue 20's budget):

    python bench/step_cost.py [--arch fcn] [--length 1460] [--channels 1] [--batch 16]
        [--steps 40] [--variants plain jit bf16]

Each variant runs in its own subprocess (a Keras dtype policy and TensorFlow's thread
pools are process-wide), one intra-op and one inter-op thread, as each of a 2-core
machine's two concurrent jobs would: ``build_model`` of ``--arch`` for inputs of
``--length`` x ``--channels`` (10-class classification, Adam), one warm-up epoch of
``--steps`` batches of ``--batch`` random inputs, then ``--steps`` timed steps. Printed per
variant: wall and CPU milliseconds per step (CPU: the process's user + system time, which
another user's load on a shared machine does not inflate), and the convolutions' GFLOP per
step (forward and backward, 3 x 2 x kernel x in x out x output length x batch, from the
model's Conv1D layers) with the rate they imply. ``plain``: float32 as the study runs;
``jit``: ``jit_compile=True`` (training.jit_compile); ``bf16``: Keras'
``mixed_bfloat16`` policy (not a project setting).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

VARIANTS = ("plain", "jit", "bf16")


def measure(arch: str, length: int, channels: int, batch: int, steps: int, variant: str) -> dict:
    """One variant's figures, in this process (the subprocess's side)."""
    import resource
    import time

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    if variant == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(1)
    from tstransfer.models import build_model

    model = build_model(arch, length=length, channels=channels, task="classification", n_outputs=10,
                        stream_max=False, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=variant == "jit")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, length, channels)).astype("float32")
    y = np.arange(batch * steps) % 10

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    model.fit({"waveform": x}, y, batch_size=batch, epochs=1, verbose=0)  # tracing, warm-up
    wall, started = time.perf_counter(), cpu()
    model.fit({"waveform": x}, y, batch_size=batch, epochs=1, verbose=0)
    wall, used = time.perf_counter() - wall, cpu() - started
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            kernel, inputs, outputs = layer.kernel.shape
            flops += 3 * 2 * kernel * inputs * outputs * layer.output.shape[1] * batch
    return {"wall_ms": 1000 * wall / steps, "cpu_ms": 1000 * used / steps, "conv_gflop": flops / 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="fcn")
    parser.add_argument("--length", type=int, default=1460)  # ACSF1, the study's longest
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.arch, args.length, args.channels, args.batch, args.steps)
    if args.child:
        print(json.dumps(measure(*shape, args.child)))
        return 0
    print(f"{args.arch}, length {args.length} x {args.channels}, batch {args.batch}, {args.steps} steps, 1 thread")
    print(f"{'variant':<8} {'wall ms':>8} {'CPU ms':>8} {'conv GFLOP':>11} {'GFLOP/s (CPU)':>14}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for variant in args.variants:
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", variant],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"{variant}: failed: {done.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 1
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{variant:<8} {row['wall_ms']:>8.1f} {row['cpu_ms']:>8.1f} {row['conv_gflop']:>11.1f} "
              f"{row['conv_gflop'] / row['cpu_ms'] * 1000:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
