"""A model whose head compares each window with the tile's first (``ModelConfig.reference``).

What must hold: widened from a plain model it computes exactly what that model computes; it
saves and loads as itself; every way of predicting (per window, shared steps, over a context
halo, in a map worker, cached features for the head) gives the same probabilities; a run with
``head_start="fresh"`` keeps the baseline as its "before" and the head's first kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_map_cli import S, stacked_grid_project
from test_shared_steps import series_with_gaps, stacked_file

from ercnn_napari.core.project import Project
from ercnn_napari.ml.data.halo import HaloReader, context_windows, crop_centre
from ercnn_napari.ml.data.observations import open_observations
from ercnn_napari.ml.data.pipeline import pad_numpy
from ercnn_napari.ml.inference import predict
from ercnn_napari.ml.inference.evaluate import evaluate_tiles, predict_window_maps
from ercnn_napari.ml.model.network import ModelConfig, attach_reference, build_model, uses_reference
from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
from ercnn_napari.ml.model.weights import load_model, load_weights, save_model
from ercnn_napari.ml.training.frozen_backbone import FeatureCache, split_model
from ercnn_napari.ml.training.train_setup import refresh_head

SMALL = ModelConfig(time_steps=92, sar_filters=2, opt_filters=3, head_filters=2)
SMALL_REFERENCE = ModelConfig(**{**SMALL.to_dict(), "reference": True})


def comparing_model(config: ModelConfig = SMALL_REFERENCE, seed: int = 2) -> keras.Model:
    """A reference model whose head really reads the difference (random, non-zero weights)."""
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    conv = model.get_layer("head_conv_1").conv
    conv.kernel.assign(np.random.default_rng(seed).normal(0, 0.5, conv.kernel.shape).astype(np.float32))
    return model


def test_published_weights_widen_to_the_same_network(published_weights):
    plain, _ = load_model(published_weights)
    wide = build_model(ModelConfig(reference=True))
    load_weights(wide, published_weights)
    kernel = wide.get_layer("head_conv_1").conv.kernel.numpy()
    assert kernel.shape == (3, 3, 72, 8) and not kernel[:, :, 36:].any()
    rng = np.random.default_rng(0)
    windows = rng.uniform(0, 0.4, (2, 92, 8, 8, 17)).astype(np.float32)
    first = rng.uniform(0, 0.4, (92, 8, 8, 17)).astype(np.float32)
    got = np.asarray(wide(attach_reference(windows, first), training=False))
    assert np.abs(got - np.asarray(plain(windows, training=False))).max() < 1e-5


def test_a_plain_file_loads_into_a_reference_model_and_the_result_saves_as_itself(tmp_path):
    keras.utils.set_random_seed(4)
    plain = build_model(SMALL)
    plain_file = save_model(plain, SMALL, tmp_path / "plain.ercnn.h5")
    wide = build_model(SMALL_REFERENCE)
    load_weights(wide, plain_file)
    windows = series_with_gaps(92, 6, 1)[np.newaxis]
    with_first = attach_reference(windows, series_with_gaps(92, 6, 2))
    np.testing.assert_allclose(np.asarray(wide(with_first)), np.asarray(plain(windows)), rtol=0, atol=1e-6)
    model = comparing_model()
    saved = save_model(model, SMALL_REFERENCE, tmp_path / "ref.ercnn.h5")
    loaded, config = load_model(saved)
    assert config.reference and uses_reference(loaded) and not uses_reference(plain)
    np.testing.assert_array_equal(np.asarray(loaded(with_first)), np.asarray(model(with_first)))
    # the comparison matters: another first window gives another answer
    other = attach_reference(windows, series_with_gaps(92, 6, 3))
    assert np.abs(np.asarray(model(other)) - np.asarray(model(with_first))).max() > 1e-4
    # a plain model refuses a reference model's weights (the head's first kernel is too wide)
    with pytest.raises(Exception, match="head_conv_1"):
        load_weights(build_model(SMALL), saved)


def test_attach_reference_refuses_a_mismatched_window():
    with pytest.raises(Exception, match="reference window has shape"):
        attach_reference(np.zeros((2, 12, 4, 4, 17)), np.zeros((12, 5, 4, 17)))


@pytest.mark.parametrize("mode", ["quirk", "step", "pixel"])
def test_shared_steps_equal_the_per_window_model(mode):
    model = comparing_model(ModelConfig(**{**SMALL_REFERENCE.to_dict(), "mask_mode": mode}))
    series = series_with_gaps(60, 6, seed=1)
    starts, counts = np.array([3, 8, 17]), np.array([40, 37, 43])
    first = (0, 41)
    shared = predict_series([SharedStepModel(model)], series, starts, counts, batch_size=2, reference=first)
    windows = np.stack([pad_numpy(series[s:s + c], 92) for s, c in zip(starts, counts, strict=True)])
    reference = pad_numpy(series[first[0]:first[0] + first[1]], 92)
    expected = np.asarray(model(attach_reference(windows, reference), training=False))
    assert np.abs(shared - expected).max() < 1e-5
    with pytest.raises(ValueError, match="first window"):
        predict_series([SharedStepModel(model)], series, starts, counts)


def test_predictor_paths_agree_for_an_ensemble_of_plain_and_reference_models(tmp_path):
    keras.utils.set_random_seed(3)
    models = [build_model(SMALL), comparing_model()]
    path, obs = stacked_file(tmp_path)
    job = predict.file_job(path, stride=3)
    shared = predict.Predictor(models, "mean", batch_size=4)
    assert shared.reference
    got, _ = shared.run(job)
    want, _ = predict.Predictor(models, "mean", batch_size=4, shared_steps=False).run(job)
    assert len(got) == len(job.table) > 3 and np.abs(got - want).max() < 1e-5
    # by hand: the reference model's windows beside the file's first window
    first = pad_numpy(obs[job.table.start_index[0]:][:job.table.n_obs[0]], 92)
    row = 2
    window = pad_numpy(obs[job.table.start_index[row]:][:job.table.n_obs[row]], 92)[np.newaxis]
    by_hand = (np.asarray(models[0](window)) + np.asarray(models[1](attach_reference(window, first)))) / 2
    assert np.abs(got[row] - by_hand[0]).max() < 1e-5


@pytest.fixture(scope="module")
def halo_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    project, _ = stacked_grid_project(root, [(y, x) for y in range(3) for x in range(3)])
    model_path = save_model(comparing_model(), SMALL_REFERENCE, root / "ref.ercnn.h5")
    return {"root": root, "project": project.root, "model": model_path}


def _by_hand(model, source, tile, table, indices, halo=0):
    """Per-window probabilities of ``indices``, each window beside the tile's first, computed here."""
    if halo:
        reader = HaloReader(source, halo, "reflect")
        windows = context_windows(reader, tile, table, np.concatenate([[0], indices]), 92)
    else:
        windows = np.asarray(source.windows(tile, np.concatenate([[0], indices])), np.float32)
    return crop_centre(np.asarray(model(attach_reference(windows[1:], windows[0]), training=False)), halo)


def test_evaluation_and_held_out_maps_read_the_first_window(halo_project):
    model, _ = load_model(halo_project["model"])
    source = open_observations(Project.open(halo_project["project"]))
    tile = (1, 1)
    maps, _, _ = predict_window_maps(model, 92, source, tile, 4)
    table = source.window_table(tile)
    indices = np.unique(np.round(np.linspace(0, len(table) - 1, 4)).astype(int))
    assert np.abs(maps - _by_hand(model, source, tile, table, indices)).max() < 1e-6
    label = (maps.max(axis=0) > np.median(maps.max(axis=0))).astype(np.float32)
    result = evaluate_tiles(model, 92, source, {tile: label}, windows_per_tile=4, threshold=float(np.median(maps)))
    assert result["complete"] and result["windows"]["1:1"] == [int(table.ids[i]) for i in indices]
    halo_maps, _, _ = predict_window_maps(model, 92, source, tile, 4, halo_reader=HaloReader(source, 4, "reflect"))
    assert np.abs(halo_maps - _by_hand(model, source, tile, table, indices, halo=4)).max() < 1e-6


def test_map_worker_compares_with_the_first_window_over_the_halo(halo_project):
    out = halo_project["root"] / "map"
    command = [sys.executable, "-m", "ercnn_napari", "map", str(halo_project["project"]), "--model",
               str(halo_project["model"]), "--out", str(out), "--halo", "4", "--block", "2", "--stride", "5",
               "--workers", "1", "--progress", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model, _ = load_model(halo_project["model"])
    source = open_observations(Project.open(halo_project["project"]))
    full = source.window_table((1, 1))
    table = full.select(full.every(5))
    block = HaloReader(source, 4).block((1, 1))

    def over_the_halo(first_row: int) -> np.ndarray:
        first = (int(full.start_index[first_row]), int(full.n_obs[first_row]))
        return predict_series([SharedStepModel(model)], block.series, table.start_index, table.n_obs,
                              mask_region=block.centre, reference=first)[:, block.centre[0], block.centre[1]]

    got = np.load(out / "tiles" / "1_1.npy")
    assert got.shape == (len(table), S, S)
    assert np.abs(got - over_the_halo(0)).max() < 1e-6
    assert np.abs(got - over_the_halo(7)).max() > 1e-4  # it is the first window that the map compares with
    assert json.loads((out / "map.json").read_text())["status"] == "complete"


def test_cached_features_feed_the_head_what_the_model_reads():
    model = comparing_model(ModelConfig.tiny(reference=True))
    backbone, head = split_model(model)
    assert int(backbone.input_shape[-1]) == 17 and int(head.input_shape[-1]) == 2 * int(backbone.output_shape[-1])
    rng = np.random.default_rng(7)
    data = rng.uniform(0.0, 0.3, (5, 12, 16, 16, 17)).astype(np.float32)
    cache = FeatureCache(backbone, lambda tile, windows: data[list(windows)], batch_size=2, reference=True)
    assert cache.fill({(0, 0): [2, 4]}) and len(cache) == 3  # the first window is cached too
    from_cache = np.asarray(head(cache.features((0, 0), [2, 4]), training=False))
    whole = np.asarray(model(attach_reference(data[[2, 4]], data[0]), training=False))
    np.testing.assert_allclose(from_cache, whole, rtol=0, atol=1e-6)


def test_fresh_head_keeps_the_first_kernel_and_is_seeded():
    model = comparing_model()
    before = {layer: [w.numpy().copy() for w in model.get_layer(layer).weights]
              for layer in ("head_conv_1", "head_conv_2", "head_out")}
    refresh_head(model, seed=11)
    first = model.get_layer("head_conv_1")
    np.testing.assert_array_equal(first.conv.kernel.numpy(), before["head_conv_1"][0])
    assert np.array_equal(first.norm.gamma.numpy(), np.ones(2)) and not first.norm.moving_mean.numpy().any()
    assert not np.array_equal(model.get_layer("head_conv_2").conv.kernel.numpy(), before["head_conv_2"][0])
    again = comparing_model()
    refresh_head(again, seed=11)
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_full_network_training_reads_each_window_beside_the_first(sample_project, tmp_path):
    """The whole network (no cached features, lean gradients) trains on 34-channel inputs end to end."""
    from test_train_cli import cli, events

    from ercnn_napari.core.messages import Finished, Step

    run_dir = tmp_path / "run"
    result = cli("train", str(sample_project), "--split", "V1", "--preset", "tiny", "--reference",
                 "--gradients", "lean", "--out", str(run_dir), "--progress", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    messages = events(result.stdout)
    assert sum(isinstance(m, Step) for m in messages) == 2 and isinstance(messages[-1], Finished)
    model, config = load_model(run_dir / "model.ercnn.h5")
    assert config.reference and uses_reference(model)
    config_json = json.loads((run_dir / "config.json").read_text())
    assert config_json["model_config"]["reference"] and config_json["train"]["reference"]
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["sets"]["val"]["after"]["complete"]
