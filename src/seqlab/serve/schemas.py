"""Request and response bodies of the HTTP API (they also make the OpenAPI docs at /docs).

Every string a request carries goes through `Text`: a lone UTF-16 surrogate (valid JSON as "\\ud800",
but not Unicode text) becomes U+FFFD, the replacement character, as undecodable bytes do elsewhere.
For predictions this changes nothing (either way the character only separates words), and it lets
explanations, echoed ids and error messages be encoded as UTF-8.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from seqlab.explain import Method
from seqlab.serve.config import MAX_TEXTS

LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str from JSON holds pairs already joined: any left is alone


def replace_lone_surrogates(value: Any) -> Any:
    """`value` with lone surrogates in its strings (nested in lists too) replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [replace_lone_surrogates(item) for item in value]
    return value


Text = Annotated[str, BeforeValidator(replace_lone_surrogates)]
ERROR_CODES = (400, 401, 404, 408, 413, 415, 422, 503)  # what a request may get instead of its answer


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["A wonderful film."]}]})

    texts: list[Text] = Field(description=f"Reviews to classify, 1 to {MAX_TEXTS}.",
                              json_schema_extra={"minItems": 1, "maxItems": MAX_TEXTS})
    model: Optional[Text] = Field(None, description="Name of a served model; default: the first one.")

    @field_validator("texts")
    @classmethod
    def _count(cls, texts: list[str]) -> list[str]:
        if not texts:
            raise ValueError("the list is empty; send at least one text")
        if len(texts) > MAX_TEXTS:
            raise ValueError(f"{len(texts)} texts is more than the {MAX_TEXTS} allowed per request; "
                             "split them over several requests")
        return texts


class PredictionOut(BaseModel):
    label: str = Field(description="The most probable class.")
    probability: float = Field(description="Its probability.")
    probabilities: dict[str, float] = Field(description="Every class's probability.")
    tokens: int = Field(description="Tokens the model read (at most the model's maxlen).")
    truncated: bool = Field(description="Whether the text was longer than maxlen and its start was cut, as in training.")


class PredictResponse(BaseModel):
    model: str
    backend: str
    predictions: list[PredictionOut]


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="One review; the model reads at most its maxlen tokens of it.")
    model: Optional[Text] = Field(None, description="Name of a served model; default: the first one.")
    method: Method = Field("auto", description="auto: attention weights if the model has them, else occlusion.")
    target: Optional[Text] = Field(None, description="Class the scores refer to; default: the predicted one.")


class WordOut(BaseModel):
    text: str
    start: int
    end: int
    token: str
    read: bool
    score: Optional[float]


class ExplainResponse(BaseModel):
    model: str
    backend: str
    prediction: PredictionOut
    method: str
    target: str
    description: str
    words_cut: int = Field(description="Words cut off to fit maxlen: never read by the model.")
    start_token: Optional[float]
    words: list[WordOut] = Field(description="The words the model read and, of those cut off, at most maxlen: the "
                                             "ones next to the read part (words_cut counts them all).")


class ModelInfo(BaseModel):
    name: str
    architecture: str
    backend: str
    labels: list[str]
    maxlen: int
    truncating: str
    methods: list[str] = Field(description="Explanation methods this model supports.")
    test_accuracy: Optional[float]


class ErrorResponse(BaseModel):
    error: str


# Open Inference Protocol (KServe v2), JSON/REST binding.

class InferInput(BaseModel):
    name: str = Field(json_schema_extra={"enum": ["text"]})
    shape: list[int] = Field(description="Must hold as many elements as data (e.g. [N] or [N, 1]).",
                             json_schema_extra={"items": {"type": "integer", "minimum": 0}})
    datatype: str = Field(json_schema_extra={"enum": ["BYTES"]})
    data: list[Any] = Field(description=f"1 to {MAX_TEXTS} texts, flat or nested as the shape says.",
                            json_schema_extra={"minItems": 1, "maxItems": MAX_TEXTS, "items": {"anyOf": [
                                {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}})
    parameters: Optional[dict[str, Any]] = None

    @field_validator("data", mode="before")
    @classmethod
    def _clean(cls, data: list[Any]) -> list[Any]:
        return replace_lone_surrogates(data)


class RequestedOutput(BaseModel):
    name: str = Field(json_schema_extra={"enum": ["label", "probabilities", "tokens", "truncated"]})
    parameters: Optional[dict[str, Any]] = None


class InferRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["A wonderful film."]}]}]})

    id: Optional[Text] = None
    inputs: list[InferInput] = Field(json_schema_extra={"minItems": 1, "maxItems": 1})
    outputs: Optional[list[RequestedOutput]] = None
    parameters: Optional[dict[str, Any]] = None


class InferOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    outputs: list[InferOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] = {}
