"""Model files: the authors' Keras-2 HDF5, our *.ercnn.h5, run folders, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ercnn_napari.core import model_files  # noqa: E402
from ercnn_napari.core.errors import ModelFileError  # noqa: E402
from ercnn_napari.core.model_files import default_baseline, describe_model_file, resolve_model_path  # noqa: E402
from ercnn_napari.ml.model.network import ModelConfig, build_model, ordered_weights  # noqa: E402
from ercnn_napari.ml.model.weights import load_model, load_published_weights, load_weights, save_model  # noqa: E402

KERAS2_NAMES = {"kernel": "kernel:0", "bias": "bias:0", "gamma": "gamma:0", "beta": "beta:0",
                "moving_mean": "moving_mean:0", "moving_variance": "moving_variance:0",
                "recurrent_kernel": "recurrent_kernel:0"}


def write_keras2_h5(path: Path, model, drop_layer: int | None = None,
                    reshape: tuple[int, str, tuple] | None = None) -> Path:
    """A file in Keras 2's HDF5 layout (``model_weights``, ``layer_names``, ``weight_names``).

    ``drop_layer`` leaves one weighted layer out; ``reshape`` = (layer index, weight, shape)
    stores one weight with another shape.
    """
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights")
        root.attrs["keras_version"] = "2.4.0"
        names = [b"input_1", b"masking"]
        root.create_group("input_1").attrs["weight_names"] = []
        root.create_group("masking").attrs["weight_names"] = []
        for index, (layer_name, pairs) in enumerate(ordered_weights(model)):
            if index == drop_layer:
                continue
            group = root.create_group(f"k2_{layer_name}")
            weight_names = []
            for weight_name, variable in pairs:
                value = variable.numpy()
                if reshape and reshape[0] == index and reshape[1] == weight_name:
                    value = np.zeros(reshape[2], np.float32)
                full = f"k2_{layer_name}/{KERAS2_NAMES[weight_name]}"
                group.create_dataset(full, data=value)
                weight_names.append(full.encode())
            group.attrs["weight_names"] = weight_names
            names.append(f"k2_{layer_name}".encode())
        root.attrs["layer_names"] = names
    return path


@pytest.fixture
def tiny():
    keras.utils.set_random_seed(21)
    config = ModelConfig.tiny()
    return build_model(config), config


def window(time_steps: int = 12, size: int = 8) -> np.ndarray:
    data = np.random.default_rng(0).uniform(0.01, 0.5, (1, time_steps, size, size, 17)).astype(np.float32)
    data[:, time_steps - 3:] = -1.0
    return data


# ---- the authors' published file ------------------------------------------------------------------

def test_published_weights_load_by_layer_order(published_weights):
    model = build_model(ModelConfig())
    load_published_weights(model, published_weights)
    with h5py.File(published_weights, "r") as handle:
        root = handle["model_weights"]
        opt_kernel = root["conv_opt_26_1/conv2d_1/kernel:0"][()]
        sar_variance = root["conv_sar_10/batch_normalization/moving_variance:0"][()]
        lstm_recurrent = root["conv_lstm_opt_26_1/conv_lstm_opt_26_1/recurrent_kernel:0"][()]
        out_bias = root["conv_out_ebbi_sar_opt/conv_out_ebbi_sar_opt/bias:0"][()]
    np.testing.assert_array_equal(model.get_layer("opt_conv_1").conv.kernel.numpy(), opt_kernel)
    np.testing.assert_array_equal(model.get_layer("sar_conv").norm.moving_variance.numpy(), sar_variance)
    np.testing.assert_array_equal(model.get_layer("opt_convlstm").recurrent_kernel.numpy(), lstm_recurrent)
    np.testing.assert_array_equal(model.get_layer("head_out").bias.numpy(), out_bias)


def test_load_model_detects_published_file(published_weights):
    model, config = load_model(published_weights)
    assert config == ModelConfig()
    assert model.count_params() == 69_069
    info = describe_model_file(published_weights)
    assert info["kind"] == "published"
    assert info["keras_version"] == "2.4.0"
    assert info["config"] == ModelConfig().to_dict()


def test_published_file_refuses_a_model_with_other_widths(published_weights):
    model = build_model(ModelConfig(opt_filters=24))
    with pytest.raises(ModelFileError) as info:
        load_published_weights(model, published_weights)
    message = str(info.value)
    assert str(published_weights) in message
    assert "layer 1 (conv_opt_26_1, our opt_conv_1): kernel shape (3, 3, 13, 26) in file, (3, 3, 13, 24) expected" \
        in message


# ---- our own format -----------------------------------------------------------------------------

def test_save_and_load_round_trip_through_a_run_folder(tiny, tmp_path):
    model, config = tiny
    run = tmp_path / "run"
    metadata = {"site": "Liege", "epochs": 3, "baseline": "published"}
    save_model(model, config, run / "model.ercnn.h5", metadata)
    loaded, loaded_config = load_model(run)
    assert loaded_config == config
    np.testing.assert_array_equal(np.asarray(loaded(window(), training=False)),
                                  np.asarray(model(window(), training=False)))
    info = describe_model_file(run)
    assert info["kind"] == "ercnn"
    assert info["config"] == config.to_dict()
    assert info["metadata"] == metadata
    assert [p.name for p in run.iterdir()] == ["model.ercnn.h5"], "no temporary file may remain"


def test_load_model_can_override_the_mask_mode(tiny, tmp_path):
    model, config = tiny
    path = save_model(model, config, tmp_path / "m.ercnn.h5", {})
    loaded, loaded_config = load_model(path, mask_mode="pixel")
    assert loaded_config.mask_mode == "pixel"
    assert loaded.get_layer("timestep_mask").mode == "pixel"


def test_keras2_layout_written_here_loads_and_matches(tiny, tmp_path):
    model, config = tiny
    path = write_keras2_h5(tmp_path / "k2.h5", model)
    other = build_model(config)
    load_weights(other, path)
    np.testing.assert_array_equal(np.asarray(other(window(), training=False)),
                                  np.asarray(model(window(), training=False)))


# ---- bad files: one clear message each ------------------------------------------------------------

def test_not_hdf5(tiny, tmp_path):
    path = tmp_path / "weights.h5"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="not an HDF5 file") as info:
        load_weights(tiny[0], path)
    assert info.value.path == str(path)


def test_truncated_hdf5(tiny, tmp_path):
    model, config = tiny
    good = save_model(model, config, tmp_path / "good.ercnn.h5", {})
    data = good.read_bytes()
    bad = tmp_path / "truncated.ercnn.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted") as info:
        load_model(bad)
    assert info.value.path == str(bad)


def test_missing_layer(tiny, tmp_path):
    path = write_keras2_h5(tmp_path / "missing.h5", tiny[0], drop_layer=3)
    with pytest.raises(ModelFileError, match="file has 7 layers with weights .* the ERCNN-DRS network has 8"):
        load_weights(tiny[0], path)


def test_wrong_shape_names_the_first_mismatch(tiny, tmp_path):
    path = write_keras2_h5(tmp_path / "shape.h5", tiny[0], reshape=(4, "recurrent_kernel", (3, 3, 3, 10)))
    with pytest.raises(ModelFileError,
                       match=r"layer 5 \(k2_opt_convlstm, our opt_convlstm\): recurrent_kernel shape "
                             r"\(3, 3, 3, 10\) in file, \(3, 3, 3, 12\) expected"):
        load_weights(tiny[0], path)


def test_refused_file_leaves_model_untouched(tiny, tmp_path):
    model, _ = tiny
    before = [v.numpy().copy() for v in model.weights]
    path = write_keras2_h5(tmp_path / "shape.h5", model, reshape=(7, "bias", (2,)))
    for variable in model.weights:
        variable.assign(np.zeros(variable.shape, np.float32))
    zeros = [v.numpy().copy() for v in model.weights]
    with pytest.raises(ModelFileError, match="layer 8"):
        load_weights(model, path)
    for variable, value in zip(model.weights, zeros, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert any(np.any(b != 0) for b in before)


def test_foreign_hdf5_and_bad_ercnn_files(tiny, tmp_path):
    model, config = tiny
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("data", data=np.zeros(3))
    with pytest.raises(ModelFileError, match="neither an ercnn-napari model nor a Keras 2 weights file"):
        load_model(foreign)

    path = save_model(model, config, tmp_path / "m.ercnn.h5", {})
    with h5py.File(path, "a") as handle:
        del handle["head_out/bias"]
    with pytest.raises(ModelFileError, match="dataset 'head_out/bias' is missing"):
        load_model(path)

    path = save_model(model, config, tmp_path / "cfg.ercnn.h5", {})
    with h5py.File(path, "a") as handle:
        handle.attrs["config"] = json.dumps({**config.to_dict(), "mask_mode": "sometimes"})
    with pytest.raises(ModelFileError, match="invalid model configuration: .*mask_mode"):
        load_model(path)

    path = save_model(model, config, tmp_path / "new.ercnn.h5", {})
    with h5py.File(path, "a") as handle:
        handle.attrs["version"] = 99
    with pytest.raises(ModelFileError, match="format version 99 is newer"):
        load_model(path)


def test_run_folder_without_model_and_missing_file(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelFileError, match="folder has no model.ercnn.h5"):
        resolve_model_path(tmp_path / "run")
    with pytest.raises(ModelFileError, match="model file does not exist"):
        resolve_model_path(tmp_path / "nope.h5")


def test_save_refuses_metadata_that_is_not_json(tiny, tmp_path):
    model, config = tiny
    target = tmp_path / "m.ercnn.h5"
    save_model(model, config, target, {"ok": 1, "loss": np.float32(0.5), "dir": tmp_path})
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        save_model(model, config, target, {"tiles": {(1, 2), (3, 4)}})
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        save_model(model, config, target, {"loss": float("nan")})
    assert describe_model_file(target)["metadata"] == {"ok": 1, "loss": 0.5, "dir": str(tmp_path)}


# ---- baseline resolution and the TF-free core ---------------------------------------------------

def test_default_baseline_resolution(tmp_path, monkeypatch, tiny):
    monkeypatch.delenv("ERCNN_NAPARI_BASELINE", raising=False)
    monkeypatch.delenv("ERCNN_PUBLISHED_WEIGHTS", raising=False)
    monkeypatch.setattr(model_files, "DEMO_BASELINE", tmp_path / "absent.ercnn.h5")
    assert default_baseline() is None

    demo = save_model(*tiny, tmp_path / "demo.ercnn.h5", {})
    monkeypatch.setattr(model_files, "DEMO_BASELINE", demo)
    assert default_baseline() == demo

    published = tmp_path / "published.hdf5"
    published.write_bytes(b"")
    monkeypatch.setenv("ERCNN_PUBLISHED_WEIGHTS", str(published))
    assert default_baseline() == published

    run = tmp_path / "run"
    save_model(*tiny, run / "model.ercnn.h5", {})
    monkeypatch.setenv("ERCNN_NAPARI_BASELINE", str(run))
    assert default_baseline() == run / "model.ercnn.h5"
    monkeypatch.setenv("ERCNN_NAPARI_BASELINE", str(tmp_path / "gone.h5"))
    with pytest.raises(ModelFileError, match="ERCNN_NAPARI_BASELINE points to a file that does not exist"):
        default_baseline()


def test_published_config_dict_equals_model_config_defaults():
    assert model_files.published_config_dict() == ModelConfig().to_dict()


def test_model_files_does_not_import_tensorflow(tiny, tmp_path):
    path = save_model(*tiny, tmp_path / "m.ercnn.h5", {"note": "x"})
    code = (
        "import sys; from ercnn_napari.core.model_files import describe_model_file; "
        f"info = describe_model_file({str(path)!r}); "
        "assert info['metadata'] == {'note': 'x'}, info; "
        "bad = [m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
