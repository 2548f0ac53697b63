"""Request and response bodies of the HTTP API (they also make the OpenAPI docs at /docs)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seqlab.explain import METHODS

MAX_TEXTS = 256  # texts per request; more is a 422 telling the client to split the batch


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["A wonderful film."]}]})

    texts: list[str] = Field(description=f"Reviews to classify, 1 to {MAX_TEXTS}.")
    model: Optional[str] = Field(None, description="Name of a served model; default: the first one.")

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

    text: str = Field(description="One review.")
    model: Optional[str] = Field(None, description="Name of a served model; default: the first one.")
    method: Literal[METHODS] = Field("auto", description="auto: attention weights if the model has them, else occlusion.")
    target: Optional[str] = Field(None, description="Class the scores refer to; default: the predicted one.")


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
    words_cut: int
    start_token: Optional[float]
    words: list[WordOut]


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
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: Optional[dict[str, Any]] = None


class RequestedOutput(BaseModel):
    name: str
    parameters: Optional[dict[str, Any]] = None


class InferRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["A wonderful film."]}]}]})

    id: Optional[str] = None
    inputs: list[InferInput]
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
