"""``ercnn-napari suggest``: tiles ranked by V1-V3-style disagreement or MC-dropout uncertainty of the
max-over-windows map, recomputed independently here; the spread keeps suggestions apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.cli.main import main
from ercnn_napari.core.project import Project
from ercnn_napari.core.suggestions import read_suggestions, spread_ranking
from ercnn_napari.core.tiles import format_tile_id


def test_spread_keeps_suggestions_apart_then_fills() -> None:
    scores = {(0, 0): 0.9, (0, 1): 0.8, (1, 1): 0.7, (3, 3): 0.5, (5, 0): 0.1}
    assert spread_ranking(scores, 3, min_distance=2) == [(0, 0), (3, 3), (5, 0)]
    assert spread_ranking(scores, 5, min_distance=2) == [(0, 0), (3, 3), (5, 0), (0, 1), (1, 1)]
    assert spread_ranking(scores, 2, min_distance=0) == [(0, 0), (0, 1)]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    import keras

    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.model.weights import save_model

    paths = []
    for seed in (3, 4):
        keras.utils.set_random_seed(seed)
        config = ModelConfig.tiny()
        model = build_model(config, seed=seed)
        head = model.get_layer("head_out")
        head.bias.assign(np.full(head.bias.shape, 0.1 * seed - 0.35, np.float32))
        path = tmp_path_factory.mktemp("models") / f"tiny{seed}.ercnn.h5"
        save_model(model, config, path, {"kind": "test"})
        paths.append(path)
    return paths


def _tiles(project: Project) -> list[tuple[int, int]]:
    return project.tiles_with_observations()[:3]


def test_disagreement_of_two_models_matches_an_independent_computation(sample_project, tiny_models, capsys):
    from ercnn_napari.ml.data.observations import open_observations
    from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps, predict_max_map
    from ercnn_napari.ml.model.weights import load_model

    project = Project.open(sample_project)
    tiles = _tiles(project)
    code = main(["suggest", str(sample_project), "--model", str(tiny_models[0]), "--model", str(tiny_models[1]),
                 "--tiles", ",".join(format_tile_id(t) for t in tiles), "--windows", "2", "--n", "2",
                 "--min-distance", "0", "--json", "--progress", "none", "--gpus", "none"])
    assert code == 0
    ranked, mosaic, document = read_suggestions(sample_project)
    assert document["method"] == "disagreement" and len(ranked) == 2
    source = open_observations(project)
    models = [load_model(p) for p in tiny_models]
    expected = {}
    for tile in tiles:
        table = source.window_table(tile)
        raw = np.asarray(source.windows(tile, evenly_spaced(len(table), 2)), np.float32)
        maps = np.stack([predict_max_map(m, fit_time_steps(raw, c.time_steps)) for m, c in models])
        pixel = maps.std(axis=0)
        y, x = tile
        np.testing.assert_allclose(mosaic[y * 32:(y + 1) * 32, x * 32:(x + 1) * 32], pixel, atol=1e-6)
        expected[tile] = float(pixel[1:-1, 1:-1].mean())
        assert expected[tile] > 0, "two different models must disagree somewhere"
    best = sorted(expected, key=lambda t: -expected[t])[:2]
    assert [t for t, _s in ranked] == best
    assert [s for _t, s in ranked] == pytest.approx([expected[t] for t in best], rel=1e-5)
    assert np.isnan(mosaic).sum() == mosaic.size - 32 * 32 * len(tiles)  # unscored tiles stay NaN
    assert '"suggested"' in capsys.readouterr().out


def test_one_model_uses_mc_dropout(sample_project, tiny_models, capsys):
    project = Project.open(sample_project)
    tiles = _tiles(project)[:2]
    code = main(["suggest", str(sample_project), "--model", str(tiny_models[0]), "--passes", "3",
                 "--tiles", ",".join(format_tile_id(t) for t in tiles), "--windows", "2", "--progress", "none",
                 "--gpus", "none"])
    assert code == 0
    ranked, mosaic, document = read_suggestions(sample_project)
    assert document["method"] == "mc_dropout" and document["passes"] == 3
    # recurrent dropout on: passes differ, so uncertainty is positive (it is exactly 0 with dropout off)
    assert all(score > 0 for _t, score in ranked)
    assert main(["suggest", str(sample_project), "--model", str(tiny_models[0]), "--passes", "1"]) == 2
    assert "--passes" in capsys.readouterr().err


def test_mc_dropout_keeps_batch_norm_as_trained() -> None:
    """MC passes switch dropout on but must neither normalise per batch nor move the BN statistics."""
    import keras

    from ercnn_napari.ml.inference.suggest import dropout_only
    from ercnn_napari.ml.model.network import ModelConfig, build_model

    config = ModelConfig.tiny()
    model = build_model(config, seed=0)
    x = np.random.default_rng(0).normal(size=(1, config.time_steps, 8, 8, 17)).astype(np.float32)
    norms = [la for la in model._flatten_layers(include_self=False) if isinstance(la, keras.layers.BatchNormalization)]
    assert norms, "the network has batch normalisation"
    start = [keras.ops.convert_to_numpy(n.moving_mean) for n in norms]
    model(x, training=True)  # what MC dropout did before: the moving statistics move
    assert any(not np.array_equal(s, keras.ops.convert_to_numpy(n.moving_mean)) for s, n in zip(start, norms, strict=True))
    moved = [keras.ops.convert_to_numpy(n.moving_mean) for n in norms]
    dropout_only(model)
    first, second = np.asarray(model(x, training=True)), np.asarray(model(x, training=True))
    assert np.abs(first - second).max() > 0  # dropout is on
    assert all(np.array_equal(m, keras.ops.convert_to_numpy(n.moving_mean)) for m, n in zip(moved, norms, strict=True))
