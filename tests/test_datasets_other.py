"""SPEECH, EMG and S&P 500 dataset modules: extraction, conversion and bad input.

Every converter runs through :func:`tstransfer.store.convert` on raw files in the
real on-disk formats (written by their synthetic generators through
``datasets.write_synthetic``, or built by hand here); the S&P 500 module also runs on the real Yahoo file where it is available.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import struct
import tarfile
import wave
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import resample_poly

from tstransfer import pipeline
from tstransfer.datasets import DataError, InstanceIndex, emg, sp500, speech, write_synthetic
from tstransfer.devtools.demo_cuts import EMG_PARAMS, EMG_SYNTH
from tstransfer.devtools.demo_cuts import nearest_centroid_accuracy as _nearest_centroid_accuracy
from tstransfer.seeding import rng_for
from tstransfer.store import convert, open_store, store_attrs

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from shared_data import REAL_SP500, require
except ImportError:  # pragma: no cover
    from tests.shared_data import REAL_SP500, require

LOG = logging.getLogger("test_datasets_other")
SEED = 20221025
REPO = Path(__file__).resolve().parents[1]

SPEECH_SYNTH = {"clips_per_word": 6, "n_samples": 1600}  # 0.1 s clips keep the test fast
SPEECH_PARAMS = {"sample_rate": 8000, "n_samples": 800}
SP500_SYNTH = {"n_days": 400}
SP500_PARAMS = {"window": 50, "start": "1990-01-01", "end": "2030-12-31"}


# --------------------------------------------------------------------------- helpers
def _load(out: Path) -> dict[str, np.ndarray]:
    ds = open_store(out)
    return {name: ds[name].values
            for name in ("waveform", "label", "stream_max", "split", "key", "raw_index", "mask")}


def _raw_order(store: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The store's per-instance arrays in the extraction's (raw) order.

    ``store.convert`` writes the instances in a seeded random order; ``raw_index`` records
    each one's raw position, and must be a permutation that really moves instances.
    """
    n = len(store["key"])
    assert np.array_equal(np.sort(store["raw_index"]), np.arange(n))
    if n > 2:
        assert not np.array_equal(store["raw_index"], np.arange(n))
    order = np.argsort(store["raw_index"])
    return {name: value if name == "mask" else value[order] for name, value in store.items()}


def _raw_instances(module, raw, params) -> tuple[np.ndarray, list[str]]:
    index = module.list_instances(raw, params, LOG)
    chunks = list(module.read_chunks(raw, params, index, 100_000))
    return np.concatenate([c.waveforms for c in chunks]), [k for c in chunks for k in c.keys]


def _assert_scaling(module, raw, params, store: dict[str, np.ndarray]) -> None:
    """Store waveforms are the raw instances min-max scaled, stream_max and mask as specified."""
    raw_waves, keys = _raw_instances(module, raw, params)
    store = _raw_order(store)
    assert keys == store["key"].tolist()
    x = raw_waves.astype(np.float64)
    lo, hi = x.min(axis=(1, 2)), x.max(axis=(1, 2))
    np.testing.assert_allclose(store["stream_max"], np.maximum(np.abs(lo), np.abs(hi)), rtol=1e-6)
    assert store["waveform"].min() >= 0.0 and store["waveform"].max() <= 1.0
    varying = hi > lo
    expected = (x[varying] - lo[varying, None, None]) / (hi - lo)[varying, None, None]
    np.testing.assert_allclose(store["waveform"][varying], expected, atol=2e-6)
    assert (store["waveform"][~varying] == 0).all()
    train = store["waveform"][store["split"] == 0].astype(np.float64)
    np.testing.assert_allclose(store["mask"], train.mean(axis=0), atol=1e-6)


def _assert_no_output(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert leftovers == []


def _assert_names(error: DataError, dataset: str, file: str, instance: str) -> None:
    message = str(error)
    assert message.startswith(f"{dataset}: ")
    assert file in message
    assert instance in message


def _expected_split(n: int) -> tuple[int, int, int]:
    n_train, n_val = round(0.7 * n), round(0.15 * n)
    return n_train, n_val, n - n_train - n_val


def _assert_stratified(labels: np.ndarray, split: np.ndarray) -> None:
    for value in np.unique(labels):
        members = split[labels == value]
        counts = tuple(int((members == code).sum()) for code in (0, 1, 2))
        assert counts == _expected_split(len(members)), (value, counts)


# --------------------------------------------------------------------------- SPEECH
def _wav(samples: np.ndarray, rate: int = 16_000, width: int = 2, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        dtype = {1: np.uint8, 2: "<i2"}[width]
        scale = {1: 100, 2: 20000}[width]
        frames = np.repeat(np.asarray(samples)[:, None], channels, axis=1)
        handle.writeframes(np.round(frames * scale + (128 if width == 1 else 0)).astype(dtype).tobytes())
    return buffer.getvalue()


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _tiny_speech(raw: Path, *, noise_first: bool = True, bad: dict[str, bytes] | None = None) -> dict:
    """One clip per word (clip k has 1000 + 20 k samples at 16 kHz) and two noise files."""
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    clips = []
    for k, word in enumerate(speech.WORDS):
        name = f"./{word}/{k:08x}_nohash_0.wav"
        data = (bad or {}).get(name, _wav(np.sin(np.arange(1000 + 20 * k) * (k + 1) / 50.0)))
        clips.append((name, data))
    noise = [(f"./_background_noise_/n{i}.wav", _wav(rng.uniform(-1, 1, 4000))) for i in range(2)]
    lists = [("./validation_list.txt", b"bed/00000001_nohash_0.wav\n"), ("./testing_list.txt", b"")]
    members = (noise + clips if noise_first else clips[:10] + noise + clips[10:]) + lists
    _tar(raw / speech.DEFAULT_FILE, members)
    return {"sample_rate": 8000, "n_samples": 700}


@pytest.fixture(scope="module")
def speech_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("speech_raw")
    write_synthetic("speech", raw, SPEECH_SYNTH, rng_for(SEED, "synthetic", "speech"))
    return raw


@pytest.fixture(scope="module")
def speech_store(speech_raw, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("speech_store") / "speech.zarr"
    summary = convert(speech, speech_raw, out, SPEECH_PARAMS, seed=SEED, chunk_size=64, log=LOG)
    return out, summary


def test_speech_synthetic_archive_has_the_real_layout(speech_raw):
    with tarfile.open(speech_raw / "speech_commands_v0.02.tar.gz", "r:gz") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
        assert all(name.startswith("./") for name in names)
        assert {"./validation_list.txt", "./testing_list.txt"} <= set(names)
        folders = {name.split("/")[1] for name in names if name.endswith(".wav")}
        assert folders == set(speech.WORDS) | {"_background_noise_"}
        clip = next(n for n in names if n.startswith("./yes/"))
        assert speech.CLIP_NAME.match(clip.split("/")[-1])
        with wave.open(tar.extractfile(clip)) as handle:
            assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (1, 2, 16000)


def test_speech_converts_with_labels_shapes_and_stratified_split(speech_store):
    out, summary = speech_store
    store = _load(out)
    n = 35 * SPEECH_SYNTH["clips_per_word"]
    assert store["waveform"].shape == (n, SPEECH_PARAMS["n_samples"], 1)
    assert summary["n_outputs"] == 35 and summary["class_names"] == list(speech.WORDS)
    folder_labels = [speech.WORDS.index(key.split("/")[0]) for key in store["key"]]
    assert store["label"].tolist() == folder_labels
    assert np.bincount(store["label"]).tolist() == [SPEECH_SYNTH["clips_per_word"]] * 35
    _assert_stratified(store["label"], store["split"])
    assert summary["split_method"] == "stratified random"


def test_speech_scaling_stream_max_and_mask(speech_raw, speech_store):
    _assert_scaling(speech, speech_raw, SPEECH_PARAMS, _load(speech_store[0]))


def test_speech_clips_are_resampled_and_short_ones_padded_with_noise(speech_raw):
    archive = speech_raw / speech.DEFAULT_FILE
    wavs, noise = {}, {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".wav"):
                with wave.open(tar.extractfile(member)) as handle:
                    samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0
                target = noise if "_background_noise_" in member.name else wavs
                target[member.name[2:]] = resample_poly(samples, 1, 2)
    waves, keys = _raw_instances(speech, speech_raw, SPEECH_PARAMS)
    n_keep = SPEECH_PARAMS["n_samples"]
    short = 0
    for wave_, key in zip(waves[:, :, 0], keys):
        clip = wavs[key]
        kept = min(len(clip), n_keep)
        np.testing.assert_allclose(wave_[:kept], clip[:kept], atol=1e-6)
        if len(clip) < n_keep:
            short += 1
            tail = wave_[kept:]
            assert tail.std() > 0  # noise, not zeros
            matches = [
                name for name, rec in noise.items()
                if any(
                    np.allclose(rec[s : s + len(tail)], tail, atol=1e-6)
                    for s in np.flatnonzero(np.abs(rec[: len(rec) - len(tail) + 1] - tail[0]) < 1e-6)
                )
            ]
            assert matches, f"padding of {key} is not a segment of any noise recording"
    assert short >= 10  # the generator makes about a quarter of the clips short


def test_speech_padding_is_independent_of_chunking_and_archive_order(tmp_path):
    params = _tiny_speech(tmp_path / "a", noise_first=True)
    _tiny_speech(tmp_path / "b", noise_first=False)
    index_a = speech.list_instances(tmp_path / "a", params, LOG)
    index_b = speech.list_instances(tmp_path / "b", params, LOG)
    assert index_a.noise_before_clips and not index_b.noise_before_clips
    runs = {
        "single pass, chunks of 4": (tmp_path / "a", index_a, 4),
        "noise pass first, one chunk": (tmp_path / "b", index_b, 100),
        # An index without the listing's noise notes: read_chunks finds the noise itself.
        "plain index": (tmp_path / "b", InstanceIndex(table=index_b.table), 7),
    }
    results = {}
    for label, (raw, index, chunk) in runs.items():
        chunks = list(speech.read_chunks(raw, params, index, chunk))
        assert all(len(c.keys) <= chunk for c in chunks)
        by_key = dict(zip([k for c in chunks for k in c.keys], np.concatenate([c.waveforms for c in chunks])))
        results[label] = by_key
    reference = results["single pass, chunks of 4"]
    assert len(reference) == 35
    for label, by_key in results.items():
        assert by_key.keys() == reference.keys(), label
        for key in reference:
            np.testing.assert_array_equal(by_key[key], reference[key], err_msg=label)
    # Clip k has 1000 + 20 k samples at 16 kHz -> 500 + 10 k at 8 kHz: words 0..19 need
    # padding up to 700 samples, and each draws its own segment.
    tails = [reference[k][500 + 10 * i :, 0] for i, k in enumerate(index_a.table["key"]) if 500 + 10 * i < 700]
    assert len(tails) == 35 - 15
    # Independent uniform draws over ~3,900 positions: a coincidence is possible, a
    # shared offset for most clips is not.
    assert len({t[:5].tobytes() for t in tails}) > len(tails) // 2


def _authors_rotating_padding(raw: Path, n_samples: int) -> dict[str, np.ndarray]:
    """preprocess_speech_commands_8khz.py (ecokeco/tstl) written out, clip after clip: the
    noise recordings (resampled, sorted by name) concatenated; each short clip padded with
    the buffer's first samples, the buffer then rotated left by as many; words in their
    alphabetical order, each word's clips sorted by name."""
    recordings, clips = {}, {}
    with tarfile.open(raw / speech.DEFAULT_FILE, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".wav"):
                with wave.open(tar.extractfile(member)) as handle:
                    samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0
                name = member.name[2:]
                (recordings if name.startswith("_background_noise_/") else clips)[name] = resample_poly(samples, 1, 2)
    noise = np.concatenate([recordings[name] for name in sorted(recordings)])
    padded = {}
    for word in speech.WORDS:
        for name in sorted(n for n in clips if n.split("/")[0] == word):
            data = clips[name][:n_samples]
            if len(data) < n_samples:
                need = n_samples - len(data)
                data = np.concatenate((data, noise[0:need]))
                noise = np.concatenate((noise[need:], noise[:need]))
            padded[name] = data
    return padded


def test_speech_rotating_buffer_pads_as_the_authors_script(tmp_path):
    """extract padding rotating_buffer (switch authors_data_releases) gives every clip the
    authors' padding, whatever the archive's member order, the chunking or the index."""
    params = _tiny_speech(tmp_path / "a", noise_first=True)
    _tiny_speech(tmp_path / "b", noise_first=False)
    # Clip k: 500 + 10 k samples at 8 kHz; at 900 every clip is short and the paddings
    # (8,050 samples in all) wrap twice round the 4,000-sample buffer.
    params = {**params, "n_samples": 900, "padding": "rotating_buffer"}
    expected = _authors_rotating_padding(tmp_path / "a", 900)
    index_b = speech.list_instances(tmp_path / "b", params, LOG)
    runs = {
        "single pass, chunks of 4": (tmp_path / "a", speech.list_instances(tmp_path / "a", params, LOG), 4),
        "noise pass first, one chunk": (tmp_path / "b", index_b, 100),
        "plain index of a subset": (tmp_path / "b", InstanceIndex(table=index_b.table.iloc[::3]), 5),
    }
    for label, (raw, index, chunk) in runs.items():
        chunks = list(speech.read_chunks(raw, params, index, chunk))
        got = dict(zip([k for c in chunks for k in c.keys], np.concatenate([c.waveforms for c in chunks])))
        assert list(got) == index.table["key"].tolist(), label
        for key, wave_ in got.items():
            np.testing.assert_allclose(wave_[:, 0], expected[key], atol=1e-6, err_msg=f"{label}: {key}")
    # The default stays a seeded segment per clip: a different padding.
    default = next(speech.read_chunks(tmp_path / "a", {**params, "padding": "segment"}, index_b, 35))
    assert not np.allclose(default.waveforms[0, 500:, 0], expected[default.keys[0]][500:], atol=1e-3)


def test_speech_resampled_length_is_the_resamplers():
    x = np.random.default_rng(1).normal(size=1001)
    for n in (0, 1, 7, 999, 1000, 1001):
        for rate in (8000, 11_025, 16_000):
            for resampler in speech.RESAMPLERS:
                assert speech.resampled_length(n, rate) == len(speech.resample(x[:n], rate, resampler))


def test_speech_words_are_learnable(speech_store):
    store = _load(speech_store[0])
    spectrum = np.abs(np.fft.rfft(store["waveform"][:, :, 0] - store["waveform"][:, :, 0].mean(1, keepdims=True)))
    features = np.log1p(spectrum[:, :400].reshape(len(spectrum), 50, 8).mean(axis=2))  # 50 bands of 80 Hz
    accuracy = _nearest_centroid_accuracy(features, store["label"], store["split"])
    assert accuracy > 0.3  # chance is 1/35


def test_speech_truncated_archive_names_dataset_file_and_member(speech_raw, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    data = (speech_raw / speech.DEFAULT_FILE).read_bytes()
    (raw / speech.DEFAULT_FILE).write_bytes(data[: len(data) // 2])
    out = tmp_path / "speech.zarr"
    with pytest.raises(DataError, match="truncated") as caught:
        convert(speech, raw, out, SPEECH_PARAMS, seed=SEED, log=LOG)
    _assert_names(caught.value, "speech", speech.DEFAULT_FILE, "member ")
    assert "truncated" in str(caught.value)
    _assert_no_output(out)


def test_speech_truncation_between_members_is_caught(tmp_path):
    """A gzip stream cut after its last tar member (trailer missing) still fails."""
    params = _tiny_speech(tmp_path / "full")
    raw_tar = gzip.decompress((tmp_path / "full" / speech.DEFAULT_FILE).read_bytes())
    (tmp_path / "cut").mkdir()
    # Tar reading alone would not notice: the cut is past the end-of-archive marker.
    whole = gzip.compress(raw_tar)
    (tmp_path / "cut" / speech.DEFAULT_FILE).write_bytes(whole[:-8])
    with pytest.raises(DataError, match="truncated"):
        speech.list_instances(tmp_path / "cut", params, LOG)


@pytest.mark.parametrize(
    "bad_wav, reason",
    [
        (_wav(np.zeros(1000), rate=44_100), "44100 Hz"),
        (_wav(np.zeros(1000), width=1), "8-bit"),
        (_wav(np.zeros(1000), channels=2), "2 channel"),
        (b"RIFF\x00\x00not a wav", "unreadable WAV"),
        (_wav(np.zeros(1000))[:-100], "truncated"),
    ],
    ids=["rate", "width", "stereo", "garbage", "truncated"],
)
def test_speech_bad_wav_names_dataset_file_and_clip(tmp_path, bad_wav, reason):
    member = "./cat/00000003_nohash_0.wav"
    params = _tiny_speech(tmp_path / "raw", bad={member: bad_wav})
    out = tmp_path / "speech.zarr"
    with pytest.raises(DataError, match=re.escape(reason)) as caught:
        convert(speech, tmp_path / "raw", out, params, seed=SEED, log=LOG)
    _assert_names(caught.value, "speech", speech.DEFAULT_FILE, "cat/00000003_nohash_0.wav")
    assert reason in str(caught.value)
    _assert_no_output(out)


def test_speech_reads_extensible_pcm_wav(tmp_path):
    """WAVE_FORMAT_EXTENSIBLE with a PCM sub-format is plain PCM (Python 3.11's wave refuses it)."""
    samples = (np.sin(np.arange(300) / 7.0) * 20000).astype("<i2")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 0)
    fmt += (1).to_bytes(2, "little") + bytes.fromhex("000000001000800000aa00389b71")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"LIST" + (4).to_bytes(4, "little") + b"INFO"  # a chunk to skip
    body += b"data" + len(samples.tobytes()).to_bytes(4, "little") + samples.tobytes()
    extensible = b"RIFF" + len(body).to_bytes(4, "little") + body
    decoded = speech.decode_wav(extensible, tmp_path, "x.wav")
    np.testing.assert_array_equal(decoded, samples / 32768.0)
    np.testing.assert_array_equal(speech.decode_wav(_wav(samples / 20000.0), tmp_path, "y.wav") * 32768, samples)


# --------------------------------------------------------------------------- EMG
def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _labels(*runs: tuple[str, int]) -> np.ndarray:
    return np.concatenate([np.full(n, label, dtype="<U6") for label, n in runs])


@pytest.fixture(scope="module")
def emg_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("emg_raw")
    write_synthetic("emg", raw, EMG_SYNTH, rng_for(SEED, "synthetic", "emg"))
    return raw


@pytest.fixture(scope="module")
def emg_store(emg_raw, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("emg_store") / "emg.zarr"
    return out, convert(emg, emg_raw, out, EMG_PARAMS, seed=SEED, chunk_size=100, log=LOG)


def _authors_windows(ann: np.ndarray, window: int, step: int) -> list[tuple[int, int]]:
    """The authors' loop (preprocess_emg.py), written out: (start, label) of kept windows."""
    kept = []
    for start in range(0, len(ann), step):
        if start + window > len(ann):
            break
        if all(ann[j] == ann[start] for j in range(start, start + window)) and ann[start] != "none":
            kept.append((start, int(ann[start][-1]) - 1))
    return kept


def test_emg_converts_windows_as_the_authors_loop(emg_raw, emg_store):
    out, summary = emg_store
    store = _raw_order(_load(out))
    expected_keys, expected_labels = [], []
    with zipfile.ZipFile(emg_raw / "Pinch.zip") as archive:
        prefixes = sorted(n[: -len("_ann.npy")] for n in archive.namelist() if n.endswith("_ann.npy"))
        assert len(prefixes) == EMG_SYNTH["sessions"]
        for prefix in prefixes:
            ann = np.load(io.BytesIO(archive.read(prefix + "_ann.npy")))
            assert len(np.load(io.BytesIO(archive.read(prefix + "_emg.npy")))) == len(ann)
            for start, label in _authors_windows(ann, 80, 10):
                expected_keys.append(f"{prefix}:{start}")
                expected_labels.append(label)
    assert store["key"].tolist() == expected_keys
    assert store["label"].tolist() == expected_labels
    assert store["waveform"].shape == (len(expected_keys), 80, 3)
    assert set(store["label"].tolist()) == {0, 1, 2, 3}
    _assert_stratified(store["label"], store["split"])
    dropped = summary["dropped"]
    assert set(dropped) == {emg.DROP_CHANGE, emg.DROP_REST} and min(dropped.values()) > 0


def test_emg_scaling_stream_max_and_mask(emg_raw, emg_store):
    _assert_scaling(emg, emg_raw, EMG_PARAMS, _load(emg_store[0]))


def test_emg_gestures_are_learnable_from_their_tones_alone(emg_store):
    store = _load(emg_store[0])
    windows = store["waveform"] - store["waveform"].mean(axis=1, keepdims=True)
    labels, split = store["label"], store["split"]
    # The tones have one phase on every channel, so the channel sum keeps them and
    # averages the noise down; its normalised spectrum tells the gestures apart.
    spectrum = np.abs(np.fft.rfft(windows.sum(axis=2), axis=1))
    spectrum /= spectrum.sum(axis=1, keepdims=True)
    assert _nearest_centroid_accuracy(spectrum, labels, split) > 0.7  # chance 0.25
    # ... and the channel pattern does not: every gesture activates the channels alike.
    rms = np.sqrt((windows**2).mean(axis=1))
    rms /= rms.sum(axis=1, keepdims=True)
    assert _nearest_centroid_accuracy(rms, labels, split) < 0.45


def test_emg_window_logic_on_a_hand_built_session(tmp_path):
    # 30 rest, 100 Pinch2, 5 rest, 90 Pinch4 = 225 samples; window 20, step 10.
    ann = _labels(("none", 30), ("Pinch2", 100), ("none", 5), ("Pinch4", 90))
    t = np.arange(len(ann))
    data = np.stack([1000 * c + t for c in range(8)], axis=1).astype(np.int16)  # value = 1000 ch + t
    _zip(
        tmp_path / "raw" / "Pinch.zip",
        {
            "Pinch/s1_emg.npy": _npy(data),
            "Pinch/s1_ann.npy": _npy(ann),
            "__MACOSX/Pinch/._s1_emg.npy": b"resource fork, not an array",
        },
    )
    params = {"channels": [0, 2, 5], "window": 20, "step": 10}
    index = emg.list_instances(tmp_path / "raw", params, LOG)
    # Starts 0, 10, ..., 200 (21 windows; 210 would end at 230 > 225).
    # Pinch2 spans [30, 130): constant for starts 30..110 -> 9 windows, label 1.
    # Pinch4 spans [135, 225): constant for starts 140..200 -> 7 windows, label 3.
    # Rest [0, 30): starts 0, 10 -> 2 dropped as rest. Starts 20, 120, 130 cross a change -> 3.
    expected_starts = list(range(30, 111, 10)) + list(range(140, 201, 10))
    assert index.table["key"].tolist() == [f"Pinch/s1:{s}" for s in expected_starts]
    assert index.table["label"].tolist() == [1] * 9 + [3] * 7
    assert index.dropped == {emg.DROP_CHANGE: 3, emg.DROP_REST: 2}
    chunks = list(emg.read_chunks(tmp_path / "raw", params, index, 5))
    assert [len(c.keys) for c in chunks] == [5, 5, 5, 1]
    waves = np.concatenate([c.waveforms for c in chunks])
    for wave_, start in zip(waves, expected_starts):
        expected = np.stack([1000 * c + np.arange(start, start + 20) for c in (0, 2, 5)], axis=1)
        np.testing.assert_array_equal(wave_, expected)


def test_emg_chunks_span_sessions_in_index_order(tmp_path):
    ann = _labels(("Pinch1", 40), ("none", 10), ("Pinch3", 40))
    data = np.random.default_rng(3).integers(-100, 100, size=(90, 8)).astype(np.int8)
    _zip(
        tmp_path / "raw" / "Pinch.zip",
        {f"{p}_{kind}.npy": _npy(ann if kind == "ann" else data) for p in ("b", "a") for kind in ("emg", "ann")},
    )
    params = {"channels": [1, 3, 7], "window": 20, "step": 10}
    index = emg.list_instances(tmp_path / "raw", params, LOG)
    starts = [0, 10, 20, 50, 60, 70]  # Pinch1 [0, 40), rest [40, 50), Pinch3 [50, 90)
    assert index.table["key"].tolist() == [f"{p}:{s}" for p in ("a", "b") for s in starts]
    chunks = list(emg.read_chunks(tmp_path / "raw", params, index, 4))
    assert [len(c.keys) for c in chunks] == [4, 4, 4]
    assert chunks[1].file.endswith("Pinch.zip:a_emg.npy") and chunks[2].file.endswith("Pinch.zip:b_emg.npy")
    np.testing.assert_array_equal(chunks[1].waveforms[3], data[10:30, [1, 3, 7]])  # b:10


@pytest.mark.parametrize(
    "members, file, instance, reason",
    [
        (
            {"s1_emg.npy": _npy(np.zeros((30, 8))), "s1_ann.npy": _npy(_labels(("Pinch1", 20), ("Pinch5", 10)))},
            "s1_ann.npy", "s1:20", "unknown label 'Pinch5'",
        ),
        (
            {"s1_emg.npy": _npy(np.zeros((29, 8))), "s1_ann.npy": _npy(_labels(("Pinch1", 30)))},
            "s1_emg.npy", "s1", "29 EMG samples but 30 labels",
        ),
        ({"s1_emg.npy": _npy(np.zeros((30, 8)))}, "s1_emg.npy", "s1", "no matching s1_ann.npy"),
        (
            {"s1_emg.npy": _npy(np.zeros((30, 5))), "s1_ann.npy": _npy(_labels(("Pinch1", 30)))},
            "s1_emg.npy", "s1", "expected (samples, 8)",
        ),
        (
            {"s1_emg.npy": _npy(np.full((30, 8), "x")), "s1_ann.npy": _npy(_labels(("Pinch1", 30)))},
            "s1_emg.npy", "s1", "expected numeric EMG",
        ),
    ],
    ids=["unknown-label", "length-mismatch", "missing-ann", "channels", "dtype"],
)
def test_emg_bad_input_names_dataset_file_and_session(tmp_path, members, file, instance, reason):
    _zip(tmp_path / "raw" / "Pinch.zip", members)
    out = tmp_path / "emg.zarr"
    with pytest.raises(DataError, match=re.escape(reason)) as caught:
        convert(emg, tmp_path / "raw", out, {"channels": [0, 2, 5], "window": 10, "step": 5}, seed=SEED, log=LOG)
    _assert_names(caught.value, "emg", f"Pinch.zip:{file}", f"[trace {instance}]")
    assert reason in str(caught.value)
    _assert_no_output(out)


def test_emg_unreadable_zip(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "Pinch.zip").write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "emg.zarr"
    with pytest.raises(DataError, match=r"^emg: .*Pinch\.zip: not a readable zip"):
        convert(emg, tmp_path / "raw", out, EMG_PARAMS, seed=SEED, log=LOG)
    _assert_no_output(out)


# --------------------------------------------------------------------------- S&P 500
@pytest.fixture(scope="module")
def sp500_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("sp500_raw")
    write_synthetic("sp500", raw, SP500_SYNTH, rng_for(SEED, "synthetic", "sp500"))
    return raw


def test_sp500_synthetic_csv_is_a_yahoo_export_of_a_random_walk(sp500_raw):
    frame = pd.read_csv(sp500_raw / "GSPC.csv")
    assert tuple(frame.columns) == sp500.COLUMNS
    dates = pd.to_datetime(frame["Date"])
    assert len(frame) == SP500_SYNTH["n_days"]
    assert (dates.dt.day_of_week < 5).all() and dates.is_monotonic_increasing
    returns = np.diff(np.log(frame["Close"].to_numpy()))
    assert (frame["Close"] > 0).all() and 0.002 < returns.std() < 0.05
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1)).all()


def test_sp500_windows_stay_inside_their_split_and_match_a_hand_computation(sp500_raw, tmp_path):
    out = tmp_path / "sp500.zarr"
    summary = convert(sp500, sp500_raw, out, SP500_PARAMS, seed=SEED, log=LOG)
    store = _load(out)
    closes = pd.read_csv(sp500_raw / "GSPC.csv")
    dates = closes["Date"].tolist()
    close = closes["Close"].to_numpy()
    n = len(close)
    bounds = np.cumsum([0, int(0.7 * n), int(0.15 * n)])  # row where train/val/test start
    bounds = list(bounds) + [n]
    window = SP500_PARAMS["window"]
    expected_counts = [max(0, bounds[i + 1] - bounds[i] - window) for i in range(3)]
    assert summary["split_counts"] == dict(zip(("train", "val", "test"), expected_counts))
    assert summary["split_method"] == "given"
    assert store["waveform"].shape == (sum(expected_counts), window, 1)
    row_of = {d: i for i, d in enumerate(dates)}
    for key, label, split in zip(store["key"], store["label"], store["split"]):
        first, last = (row_of[d] for d in key.split("/"))
        assert last == first + window
        assert bounds[split] <= first and last < bounds[split + 1]  # never crosses a boundary
        assert label == np.float32(close[last])
    raw_waves, keys = _raw_instances(sp500, sp500_raw, SP500_PARAMS)
    for wave_, key in zip(raw_waves, keys):
        first = row_of[key.split("/")[0]]
        np.testing.assert_array_equal(wave_[:, 0], close[first : first + window])
    _assert_scaling(sp500, sp500_raw, SP500_PARAMS, store)


def test_sp500_date_range_and_null_rows(sp500_raw, tmp_path):
    frame = pd.read_csv(sp500_raw / "GSPC.csv", dtype=str)
    null_rows = [5, 100, 101]
    for row in null_rows:
        frame.loc[row, ["Open", "High", "Low", "Close", "Adj Close", "Volume"]] = "null"
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "GSPC.csv", index=False)
    start, end = frame["Date"].iloc[3], frame["Date"].iloc[-11]
    params = {"window": 20, "start": start, "end": end}
    index = sp500.list_instances(tmp_path / "raw", params, LOG)
    rows_kept = len(frame) - 3 - 10 - len(null_rows)
    assert sum(index.dropped.values()) == 3 + 10 + len(null_rows)
    assert any("null" in reason for reason in index.dropped)
    assert len(index) == sum(max(0, s - 20) for s in sp500.split_sizes(rows_kept))
    used = {d for key in index.table["key"] for d in key.split("/")}
    assert min(used) == start and max(used) == end
    assert not used & set(frame["Date"].iloc[null_rows])


def test_sp500_real_file_window_count_and_the_papers_22681(tmp_path):
    require(REAL_SP500, "the real S&P 500 file")
    params = {"window": 50, "start": "1927-12-30", "end": "2018-11-26", "file": REAL_SP500.name}
    out = tmp_path / "sp500.zarr"
    summary = convert(sp500, REAL_SP500.parent, out, params, seed=SEED, log=LOG)
    rows = 22_834
    sizes = sp500.split_sizes(rows)
    assert sizes == (15_983, 3_425, 3_426)  # int(0.7 n), int(0.15 n), rest
    # Every row from the 51st of a split on is the label of one window: rows - 50 per split.
    assert list(summary["split_counts"].values()) == [s - 50 for s in sizes] == [15_933, 3_375, 3_376]
    assert summary["n_instances"] == rows - 3 * 50 == 22_684
    # The paper's 22,681: the authors' range(51, len(split)) never labels a split's last
    # row, losing one window per split: rows - 3 * 51.
    assert sum(s - 51 for s in sizes) == 22_681 == summary["n_instances"] - 3
    assert summary["dropped"] == {}
    store = _raw_order(_load(out))
    assert store["key"][0] == "1927-12-30/1928-03-14" and store["key"][-1] == "2018-09-14/2018-11-26"
    assert store["label"][-1] == np.float32(2673.449951)


def test_sp500_path_naming_the_real_file_itself_converts(tmp_path):
    """config datasets.sp500.path = the real file, under its own name, and nothing else set."""
    require(REAL_SP500, "the real S&P 500 file")
    extract = {"window": 50, "start": "1927-12-30", "end": "2018-11-26"}  # no `file` key
    out = tmp_path / "sp500.zarr"
    summary = pipeline.convert("sp500", REAL_SP500, out, extract, seed=SEED)
    assert summary["n_instances"] == 22_684
    assert store_attrs(out)["extraction"]["file"] == REAL_SP500.name


def test_path_naming_a_file_of_another_name_is_read_under_that_name(sp500_raw, tmp_path):
    renamed = tmp_path / "cluster copy" / "sp500_daily.csv"
    renamed.parent.mkdir()
    renamed.write_bytes((sp500_raw / "GSPC.csv").read_bytes())
    by_folder = pipeline.convert("sp500", sp500_raw, tmp_path / "a.zarr", SP500_PARAMS, seed=SEED)
    by_file = pipeline.convert("sp500", renamed, tmp_path / "b.zarr", SP500_PARAMS, seed=SEED)
    assert by_file["n_instances"] == by_folder["n_instances"] > 0
    np.testing.assert_array_equal(_load(tmp_path / "a.zarr")["waveform"], _load(tmp_path / "b.zarr")["waveform"])


@pytest.mark.parametrize(
    "dataset, params, message",
    [
        ("sp500", {**SP500_PARAMS, "end": "1980-01-01"},
         r"datasets.sp500.extract.end 1980-01-01 is before datasets.sp500.extract.start 1990-01-01"),
        ("sp500", {k: v for k, v in SP500_PARAMS.items() if k != "window"}, r"datasets.sp500.extract.window is required"),
        ("sp500", {**SP500_PARAMS, "start": "someday"}, r"datasets.sp500.extract.start: cannot read 'someday'"),
    ],
    ids=["end-before-start", "missing", "unreadable"],
)
def test_extract_settings_from_python_are_refused_naming_them(sp500_raw, tmp_path, dataset, params, message):
    """pipeline.convert bypasses the config schema: what a reader cannot read is named."""
    out = tmp_path / "out.zarr"
    with pytest.raises(ValueError, match=message):
        pipeline.convert(dataset, sp500_raw, out, params, seed=SEED)
    _assert_no_output(out)


@pytest.mark.parametrize(
    "module, params, message",
    [
        (emg, {"channels": [0, 2, 5], "window": 80}, r"^emg: datasets.emg.extract.step is required$"),
        (emg, {**EMG_PARAMS, "channels": 3}, r"^emg: datasets.emg.extract.channels: cannot read 3"),
        (speech, {**SPEECH_PARAMS, "noise_seed": "x"}, r"^speech: datasets.speech.extract.noise_seed: cannot read 'x'"),
        (speech, {**SPEECH_PARAMS, "padding": "zeros"},
         r"^speech: datasets.speech.extract.padding: cannot read 'zeros' \(not one of segment, rotating_buffer\)"),
        ("stead", {"layout": "many"}, r"^stead: datasets.stead.extract.layout: cannot read 'many' \(not one of chunks, single\)"),
    ],
    ids=["emg-missing", "emg-channels", "speech-noise-seed", "speech-padding", "stead-layout"],
)
def test_unreadable_extract_settings_name_the_config_entry(tmp_path, module, params, message):
    from tstransfer.datasets import get

    module = get(module) if isinstance(module, str) else module
    with pytest.raises(ValueError, match=message):
        module.list_instances(tmp_path, params, LOG)


def test_path_naming_a_file_that_contradicts_extract_file_is_refused(sp500_raw, tmp_path):
    out = tmp_path / "sp500.zarr"
    with pytest.raises(DataError, match=r"datasets.sp500.path names file 'GSPC.csv' but datasets.sp500.extract.file names 'other.csv'"):
        pipeline.convert("sp500", sp500_raw / "GSPC.csv", out, {**SP500_PARAMS, "file": "other.csv"}, seed=SEED)
    _assert_no_output(out)


def test_path_naming_one_file_of_a_multi_file_dataset_is_refused(tmp_path):
    write_synthetic("stead", tmp_path / "raw", {"n_instances": 8, "length": 600, "layout": "single"},
                    rng_for(SEED, "path"))
    one_file = sorted((tmp_path / "raw").iterdir())[0]
    out = tmp_path / "stead.zarr"
    with pytest.raises(DataError, match=r"datasets.stead.path names a file, but stead reads 2 raw files .*set it to the folder"):
        pipeline.convert("stead", one_file, out, {"layout": "single"}, seed=SEED)
    _assert_no_output(out)


@pytest.mark.parametrize(
    "edit, instance, reason",
    [
        (lambda f: f.drop(columns=["Close"]), None, "missing column(s) Close"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 7, "abc")), "row-7-date", "'abc' is not a positive"),
        (lambda f: f.iloc[[0, 1, 3, 2] + list(range(4, len(f)))], "row-2-date", "not strictly increasing"),
    ],
    ids=["no-close", "bad-close", "unsorted"],
)
def test_sp500_bad_input_names_dataset_file_and_row(sp500_raw, tmp_path, edit, instance, reason):
    frame = pd.read_csv(sp500_raw / "GSPC.csv", dtype=str)
    if instance is not None:
        instance = frame["Date"].iloc[int(instance.split("-")[1])]
    (tmp_path / "raw").mkdir()
    edit(frame).to_csv(tmp_path / "raw" / "GSPC.csv", index=False)
    out = tmp_path / "sp500.zarr"
    with pytest.raises(DataError, match=re.escape(reason)) as caught:
        convert(sp500, tmp_path / "raw", out, SP500_PARAMS, seed=SEED, log=LOG)
    _assert_names(caught.value, "sp500", "GSPC.csv", f"[trace {instance}]" if instance else "")
    assert reason in str(caught.value)
    _assert_no_output(out)


# --------------------------------------------------------------------------- all three
@pytest.mark.parametrize("module", [speech, emg, sp500], ids=lambda m: m.INFO.name)
def test_info_and_raw_files(module):
    info = module.INFO
    expected = {
        "speech": ("SPEECH", "speech", "classification", 1, 8000.0, 35, ["speech_commands_v0.02.tar.gz"]),
        "emg": ("EMG", "medicine", "classification", 3, 200.0, 4, ["Pinch.zip"]),
        "sp500": ("S&P 500", "finance", "regression", 1, 1.0, 1, ["GSPC.csv"]),
    }[info.name]
    params = {}
    assert (info.title, info.domain, info.task, info.channels, info.sampling_rate, info.n_outputs,
            module.raw_files(params)) == expected
    if info.name == "emg":
        assert info.class_names == ("Pinch1", "Pinch2", "Pinch3", "Pinch4")
    if info.name == "speech":
        assert list(info.class_names) == sorted(info.class_names)


def test_speech_resampler_is_scipys_anti_aliased_polyphase_filter():
    x = np.random.default_rng(0).normal(size=16_000)
    for rate in (8000, 11_025):  # 1/2 and 441/640
        up, down = Fraction(rate, 16_000).as_integer_ratio()
        np.testing.assert_array_equal(speech.resample(x, rate), resample_poly(x, up, down))
        assert len(speech.resample(x, rate)) == rate
    # A 6 kHz tone is above the 4 kHz Nyquist of 8 kHz: it must be filtered out, not
    # folded to 2 kHz.
    tone = np.sin(2 * np.pi * 6000 * np.arange(16_000) / 16_000)
    assert np.sqrt(np.mean(speech.resample(tone, 8000)[100:-100] ** 2)) < 0.01


def test_speech_resampler_setting_reaches_every_clip_and_the_noise(speech_raw):
    """extract resampler kaiser_best (switch authors_data_releases) resamples each clip
    with resampy's kaiser_best filter; the default stays resample_poly's own."""
    archive = speech_raw / speech.DEFAULT_FILE
    originals = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".wav") and "_background_noise_" not in member.name:
                with wave.open(tar.extractfile(member)) as handle:
                    originals[member.name[2:]] = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0
    waves = {}
    for resampler in ("poly", "kaiser_best"):
        params = dict(SPEECH_PARAMS, resampler=resampler)
        got, keys = _raw_instances(speech, speech_raw, params)
        waves[resampler] = got
        for wave_, key in list(zip(got[:, :, 0], keys))[:20]:
            clip = speech.resample(originals[key], 8000, resampler)
            kept = min(len(clip), SPEECH_PARAMS["n_samples"])
            np.testing.assert_allclose(wave_[:kept], clip[:kept], atol=1e-6)
    assert np.abs(waves["poly"] - waves["kaiser_best"]).max() > 1e-4
    with pytest.raises(Exception, match="resampler"):
        _raw_instances(speech, speech_raw, dict(SPEECH_PARAMS, resampler="fft"))
