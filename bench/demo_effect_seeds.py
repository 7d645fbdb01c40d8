"""How much margin do tests/test_demo_effect.py's assertions have, seed by seed?

    python bench/demo_effect_seeds.py [--seeds 1 2 3] [--skip-seismic] [--skip-classification]

Runs the test's own cuts of config/demo.yaml (tstransfer.devtools.demo_cuts, through
tstransfer.pairs) at other seeds than the config's, and prints per seed the per-run gains
the tests assert on: STEAD against SPEECH on LOMAX (the seismic test), SPEECH against
LOMAX on EMG (the classification test), with the mean differences the tests bound. Also
prints, per seed, what tests/test_datasets_other.py's EMG check measures: nearest-centroid
accuracy of the gestures from the channel-summed spectrum (must be high) and from the
channel RMS pattern (must be near chance). About 2 minutes per seed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from tstransfer import pipeline
from tstransfer.devtools import demo_cuts
from tstransfer.pairs import transfer_gains
from tstransfer.store import open_store


def emg_separability(seed: int) -> tuple[float, float]:
    """(spectrum, RMS) nearest-centroid accuracies on synthetic EMG of the data test's sizes."""
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        pipeline.synthesize("emg", tmp / "raw", demo_cuts.EMG_SYNTH, seed)
        pipeline.convert("emg", tmp / "raw", tmp / "emg.zarr", demo_cuts.EMG_PARAMS, seed)
        dataset = open_store(tmp / "emg.zarr")
        store = {name: dataset[name].values for name in ("waveform", "label", "split")}
    windows = store["waveform"] - store["waveform"].mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(windows.sum(axis=2), axis=1))
    spectrum /= spectrum.sum(axis=1, keepdims=True)
    rms = np.sqrt((windows**2).mean(axis=1))
    rms /= rms.sum(axis=1, keepdims=True)
    return (demo_cuts.nearest_centroid_accuracy(spectrum, store["label"], store["split"]),
            demo_cuts.nearest_centroid_accuracy(rms, store["label"], store["split"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--skip-seismic", action="store_true")
    parser.add_argument("--skip-classification", action="store_true")
    args = parser.parse_args()
    for seed in args.seeds:
        spectrum, rms = emg_separability(seed)
        print(f"seed {seed}: EMG gestures by spectrum {spectrum:.3f} (test > 0.7), by RMS {rms:.3f} (test < 0.45)",
              flush=True)
        if not args.skip_seismic:
            with tempfile.TemporaryDirectory() as scratch:
                result = transfer_gains(demo_cuts.small_demo_config(seed), "lomax", ["stead", "speech"], scratch,
                                        runs=3, size=100)
            gains = result.gains()
            print(f"seed {seed}: LOMAX referent MAE {np.round(result.referent, 3).tolist()}; gain % STEAD "
                  f"{np.round(gains['stead'], 1).tolist()}, SPEECH {np.round(gains['speech'], 1).tolist()}; "
                  f"mean difference {gains['stead'].mean() - gains['speech'].mean():.1f} (test > 20)", flush=True)
        if not args.skip_classification:
            with tempfile.TemporaryDirectory() as scratch:
                result = transfer_gains(demo_cuts.small_classification_config(seed), "emg", ["speech", "lomax"],
                                        scratch, runs=3)
            gains = result.gains()
            print(f"seed {seed}: EMG referent F1 {np.round(result.referent, 3).tolist()}; gain % SPEECH "
                  f"{np.round(gains['speech'], 1).tolist()}, LOMAX {np.round(gains['lomax'], 1).tolist()}; "
                  f"mean difference {gains['speech'].mean() - gains['lomax'].mean():.1f} (test > 10)", flush=True)


if __name__ == "__main__":
    main()
