"""What a served model is: its preprocessing and the meaning of its output. No TensorFlow here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preprocessing:
    """How encoded bytes become the model's input tensor."""

    image_size: int  # the side of a square input, or its height when image_width is set
    image_width: int | None = None
    # "center_crop": take the central square of side crop_fraction * shorter side,
    # then resize it (the usual ImageNet evaluation: geometrically "shorter side to
    # 256, centre 224"); "squash": resize the whole image to a square.
    resize: str = "center_crop"
    crop_fraction: float = 0.875
    method: str = "bilinear"
    # "caffe": BGR minus the ImageNet mean (keras ResNet50); "mean_std": RGB in
    # [0, 1] minus mean over std; "unit": RGB in [0, 1]; "symmetric": RGB in
    # [-1, 1]; "raw": RGB in [0, 255].
    normalisation: str = "mean_std"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def height_width(self) -> tuple[int, int]:
        return self.image_size, self.image_width or self.image_size


@dataclass(frozen=True)
class Head:
    """What the model's output means, and what the signature returns from it."""

    outputs: str = "logits"  # or "probabilities"
    # For a detector: the classes whose summed probability is the score.
    detector_label: str | None = None
    detector_class_ids: tuple[int, ...] = field(default_factory=tuple)
    threshold: float = 0.5

    @property
    def kind(self) -> str:
        return "detector" if self.detector_class_ids else "classifier"
