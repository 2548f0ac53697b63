"""Raw tensor bytes, as the Open Inference Protocol carries them outside JSON.

One encoding serves two transports: gRPC's raw_input_contents / raw_output_contents and
Triton's binary tensor data extension for REST, where a request or response body is a JSON
header of `Inference-Header-Content-Length` bytes followed by each binary tensor's bytes in
order, each tensor naming its size in `parameters.binary_data_size`. Numbers are little-endian
in row-major order, BOOL one byte per element, and each BYTES element is a 4-byte
little-endian length followed by that many bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqlab.errors import DataError

HEADER_LENGTH = "Inference-Header-Content-Length"
DTYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "<i1",
          "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


@dataclass
class Tensor:
    """One named tensor, its elements flat in row-major order (str for BYTES, else Python numbers)."""

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


def encode(tensor: Tensor) -> bytes:
    if tensor.datatype == "BYTES":
        parts = []
        for element in tensor.data:
            raw = element.encode("utf-8") if isinstance(element, str) else bytes(element)
            parts += [struct.pack("<I", len(raw)), raw]
        return b"".join(parts)
    return np.asarray(tensor.data, dtype=DTYPES[tensor.datatype]).tobytes()


def decode(name: str, datatype: str, raw: bytes) -> list[Any]:
    """The elements of one tensor's raw bytes; BYTES elements must be UTF-8 text (a seqlab model reads text)."""
    if datatype == "BYTES":
        elements: list[bytes] = []
        at = 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise DataError(f"input {name!r}: its binary data ends inside a 4-byte element length at byte {at}")
            (size,) = struct.unpack_from("<I", raw, at)
            at += 4
            if at + size > len(raw):
                raise DataError(f"input {name!r}: element {len(elements)} says {size} bytes but only "
                                f"{len(raw) - at} remain")
            elements.append(raw[at:at + size])
            at += size
        return texts(name, elements)
    if datatype not in DTYPES:
        raise DataError(f"input {name!r}: unknown datatype {datatype!r}")
    width = np.dtype(DTYPES[datatype]).itemsize
    if len(raw) % width:
        raise DataError(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements")
    return np.frombuffer(raw, dtype=DTYPES[datatype]).tolist()


def texts(name: str, elements: list[bytes]) -> list[str]:
    """BYTES elements as text, or a DataError naming the first that is not UTF-8."""
    decoded = []
    for element in elements:
        try:
            decoded.append(element.decode("utf-8"))
        except UnicodeDecodeError as problem:
            raise DataError(f"input {name!r}: element {len(decoded)} is not UTF-8 text ({problem.reason} at byte "
                            f"{problem.start}); send text encoded as UTF-8") from None
    return decoded


def json_from_binary_body(body: bytes, header_length: str) -> bytes:
    """A binary-extension request body rewritten as the plain JSON request it stands for."""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise DataError(f"the {HEADER_LENGTH} header ({header_length!r}) must be the byte length of the JSON "
                        f"header at the start of the body ({len(body)} bytes)")
    end = int(header_length)
    try:
        request = json.loads(body[:end])
    except ValueError as problem:
        raise DataError(f"the request's JSON header (its first {end} bytes) is not valid JSON ({problem})") from None
    inputs = request.get("inputs") if isinstance(request, dict) else None
    at = end
    for tensor in inputs if isinstance(inputs, list) else []:
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        size = parameters.pop("binary_data_size")
        name = tensor.get("name")
        if not isinstance(size, int) or size < 0 or at + size > len(body):
            raise DataError(f"input {name!r}: binary_data_size {size!r} runs past the end of the body "
                            f"({len(body) - at} bytes left)")
        tensor["data"] = decode(name, tensor.get("datatype"), body[at:at + size])
        at += size
    if at != len(body):
        raise DataError(f"{len(body) - at} bytes follow the request's binary tensors; each input sent as binary "
                        "data must give its size in parameters.binary_data_size")
    return json.dumps(request).encode()


def wants_binary(request: dict, name: str) -> bool:
    """Whether output `name` goes back as binary data: its own binary_data parameter, else binary_data_output."""
    for output in request.get("outputs") or []:
        if output.get("name") == name and "binary_data" in (output.get("parameters") or {}):
            return bool(output["parameters"]["binary_data"])
    return bool((request.get("parameters") or {}).get("binary_data_output", False))


def response_body(header: dict, tensors: list[Tensor], binary: set[str]) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the length of its JSON header."""
    outputs, raw = [], []
    for tensor in tensors:
        output: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if tensor.name in binary:
            raw.append(encode(tensor))
            output["parameters"] = {"binary_data_size": len(raw[-1])}
        else:
            output["data"] = tensor.data
        outputs.append(output)
    text = json.dumps({**header, "outputs": outputs}, separators=(",", ":")).encode()
    if not raw:
        return text, None
    return b"".join([text, *raw]), len(text)
