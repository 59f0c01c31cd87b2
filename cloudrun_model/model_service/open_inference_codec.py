"""The Open Inference Protocol's (KServe/Triton "v2") REST bodies, parsed and built, free of HTTP.

What a model service offers in that protocol (open_inference_routes.py serves it):
- one input, `images`: a BYTES tensor of shape [-1], one encoded image (JPEG, PNG, GIF,
  BMP, WebP) per element;
- one output, `result`: a BYTES tensor of shape [-1], per image the JSON text of the
  result the API gives for it (a classifier's `top_k` labels and scores, a detector's
  match), so that a v2 client and the API read the same answer. Raw scores are not an
  output: the served result is the one contract both unit's clients share.

Two encodings of a request and a response (the protocol's JSON, and the binary tensor
data extension of Triton: docs/protocol/extension_binary_data.md):
- JSON: BYTES elements are strings, so an image is base64 text (as MLServer's and
  KServe's "base64" content type); `result` elements come back as JSON strings.
- binary: the body is a JSON header of Inference-Header-Content-Length bytes, followed
  by the raw tensors of the inputs that name a `binary_data_size`, in their order; a
  BYTES tensor is each element's 4-byte little-endian length, then its bytes. Outputs
  asked for with `binary_data: true` (or all, with the request's `binary_data_output`)
  come back the same way.

Whatever a request gets wrong is an InvalidInferRequest (400) saying what.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass

from inference_contract.image_size import DEFAULT_MAX_IMAGE_BYTES

from .errors import InvalidInferRequest

INPUT = "images"
OUTPUT = "result"
BYTES = "BYTES"
# Triton's name for a TensorFlow SavedModel; what the metadata's `platform` says.
PLATFORM = "tensorflow_savedmodel"
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class InferRequest:
    images: list[bytes]
    request_id: str | None
    binary_output: bool


def server_metadata_document() -> dict:
    """GET /v2. The version is the protocol's: the service has no release number of its own."""
    return {"name": "inference-service model service", "version": "2",
            "extensions": ["binary_tensor_data"]}


def model_metadata(name: str, version: int) -> dict:
    """GET /v2/models/{name}: what the model takes and gives."""
    return {"name": name, "versions": [str(version)], "platform": PLATFORM,
            "inputs": [{"name": INPUT, "datatype": BYTES, "shape": [-1]}],
            "outputs": [{"name": OUTPUT, "datatype": BYTES, "shape": [-1]}]}


def body_limit(max_images: int, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> int:
    """The largest request body: max_images images of the API's size bound, as base64
    (the larger encoding), and a megabyte for the rest."""
    return max_images * (max_image_bytes * 4 // 3 + 4) + (1 << 20)


def parse_infer_request(body: bytes, header_length: str | None, max_images: int) -> InferRequest:
    """The images of an inference request, JSON or binary (header_length set)."""
    header, binary = _split(body, header_length)
    try:
        document = json.loads(header)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInferRequest(f"the request is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidInferRequest("the request's JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidInferRequest("the request must be a JSON object")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInferRequest("id must be a string")
    parameters = _object(document.get("parameters"), "parameters")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInferRequest(f"inputs must be a list holding the input {INPUT!r}")
    names = [tensor.get("name") if isinstance(tensor, dict) else None for tensor in inputs]
    if names != [INPUT]:
        raise InvalidInferRequest(f"the model takes exactly one input, {INPUT!r}; got {names}")
    images, used = _images(inputs[0], binary)
    if used != len(binary):
        raise InvalidInferRequest(f"the body has {len(binary) - used} bytes after the tensors it declares")
    if not images:
        raise InvalidInferRequest(f"the input {INPUT!r} holds no image")
    if len(images) > max_images:
        raise InvalidInferRequest(f"at most {max_images} images per request; got {len(images)}")
    return InferRequest(images, request_id, _binary_output(document.get("outputs"), parameters))


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise InvalidInferRequest(f"{HEADER_LENGTH} must be a byte count within the body's "
                                  f"{len(body)}; got {header_length!r}")
    return body[:length], body[length:]


def _object(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInferRequest(f"{what} must be a JSON object")
    return value


def _images(tensor: dict, binary: bytes) -> tuple[list[bytes], int]:
    """The input's elements and how many bytes of the binary section they took."""
    if tensor.get("datatype") != BYTES:
        raise InvalidInferRequest(f"the input {INPUT!r} must be {BYTES}; got {tensor.get('datatype')!r}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise InvalidInferRequest(f"the input {INPUT!r} needs a shape of counts, e.g. [2]; got {shape!r}")
    size = _object(tensor.get("parameters"), "the input's parameters").get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise InvalidInferRequest(f"the input {INPUT!r} has both data and binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
            raise InvalidInferRequest(f"binary_data_size must be a byte count within the "
                                      f"{len(binary)} bytes after the header; got {size!r}")
        images, used = deserialize_bytes(binary[:size]), size
    else:
        images, used = [_base64(item, index) for index, item in enumerate(_flat(tensor.get("data")))], 0
    if math.prod(shape) != len(images):
        raise InvalidInferRequest(f"the input {INPUT!r} has shape {shape} but {len(images)} elements")
    return images, used


def _flat(data) -> list:
    """The elements of data in row-major order, however deeply its rows nest (without recursion:
    the depth is the sender's)."""
    if not isinstance(data, list):
        raise InvalidInferRequest(f"the input {INPUT!r} needs data (a list) or binary_data_size")
    elements, pending = [], [iter(data)]
    while pending:
        for value in pending[-1]:
            if isinstance(value, list):
                pending.append(iter(value))
                break
            elements.append(value)
        else:
            pending.pop()
    return elements


def _base64(item, index: int) -> bytes:
    if not isinstance(item, str):
        raise InvalidInferRequest(f"image {index} must be a base64 string in JSON")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInferRequest(f"image {index} is not base64 (send it binary to skip the "
                                  f"encoding)") from None


def _binary_output(outputs, parameters: dict) -> bool:
    binary = parameters.get("binary_data_output", False)
    if outputs is None:
        return binary is True
    if not isinstance(outputs, list) or len(outputs) != 1:
        raise InvalidInferRequest(f"outputs must list the model's one output, {OUTPUT!r}")
    output = outputs[0] if isinstance(outputs[0], dict) else {}
    if output.get("name") != OUTPUT:
        raise InvalidInferRequest(f"the model's one output is {OUTPUT!r}; got {output.get('name')!r}")
    output_parameters = _object(output.get("parameters"), "the output's parameters")
    if "classification" in output_parameters:
        raise InvalidInferRequest(f"the classification extension is not offered: {OUTPUT!r} "
                                  "already holds the top labels")
    return output_parameters.get("binary_data", binary) is True


def deserialize_bytes(data: bytes) -> list[bytes]:
    """A binary BYTES tensor's elements."""
    elements, at = [], 0
    while at < len(data):
        if at + _LENGTH.size > len(data):
            raise InvalidInferRequest(f"the binary tensor is cut inside an element's length at byte {at}")
        (length,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + length > len(data):
            raise InvalidInferRequest(f"element {len(elements)} of the binary tensor declares {length} "
                                      f"bytes; {len(data) - at} are left")
        elements.append(data[at:at + length])
        at += length
    return elements


def serialize_bytes(elements: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


def build_infer_response(model: str, version: int, request: InferRequest,
                         results: list[dict]) -> tuple[bytes, dict[str, str]]:
    """The response's body and headers: `result` as JSON strings, or binary after the header."""
    texts = [json.dumps(result, separators=(",", ":")) for result in results]
    output = {"name": OUTPUT, "datatype": BYTES, "shape": [len(texts)]}
    document = {"model_name": model, "model_version": str(version),
                **({"id": request.request_id} if request.request_id is not None else {}),
                "outputs": [output]}
    if not request.binary_output:
        output["data"] = texts
        return json.dumps(document).encode(), {"Content-Type": "application/json"}
    tensor = serialize_bytes([text.encode() for text in texts])
    output["parameters"] = {"binary_data_size": len(tensor)}
    header = json.dumps(document).encode()
    return header + tensor, {"Content-Type": BINARY_CONTENT_TYPE, HEADER_LENGTH: str(len(header))}
