"""Clients of an exported AMGAN behind TF Serving (or `python -m serving.server`): gRPC
(`PredictionService.Predict`, `GetModelMetadata`) and REST (`:predict` in row or columnar form,
base64 for bytes). Both raise `ServingError` with TF Serving's status name: UNAVAILABLE when
nothing answers, DEADLINE_EXCEEDED when the answer is late, the server's code otherwise."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request

import numpy as np

from amgan_tf.serving.protocol import (HTTP_STATUS, ServingError, array_to_json,
                                       tensor_from_proto, tensor_to_proto)

_FROM_HTTP = {v: k for k, v in reversed(list(HTTP_STATUS.items()))}  # 400 -> INVALID_ARGUMENT


def _region_inputs(region) -> dict:
    if region is None:
        return {}
    return {"region_attribute": np.array(region.attribute, object),
            "region_value": np.array(region.value, object),
            "region_threshold": np.array(region.threshold, np.float32),
            "region_mode": np.array(region.mode, object)}


def _names(images, attribute, value) -> dict:
    return {"images": np.asarray(images, np.uint8),
            "attribute": np.array(attribute, object), "value": np.array(value, object)}


class ModelClient:
    """What both transports offer; `predict` is the transport."""

    def __init__(self, server: str, model_name: str = "amgan", timeout: float = 60.0,
                 version: int | None = None):
        self.server, self.model_name = server, model_name
        self.timeout, self.version = timeout, version

    def predict(self, signature: str, inputs: dict) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def manipulate(self, images, attribute, value, region=None):
        """uint8 [B, H, W, 3] -> (uint8 [B, H, W, 3], float32 attention [B, H, W, 1]);
        `region` is an `amgan_tf.manipulate_lib.Region` (or anything with its fields)."""
        inputs = {**_names(images, attribute, value), **_region_inputs(region)}
        out = self.predict("manipulate_region" if region else "serving_default", inputs)
        return np.asarray(out["images"], np.uint8), np.asarray(out["attention"], np.float32)

    def manipulate_bytes(self, encoded: list[bytes], attribute, value):
        """Encoded JPEG/PNG files -> (PNG files of the results, PNG files of the attention)."""
        out = self.predict("manipulate_bytes", {
            "images_bytes": np.array(encoded, object), "attribute": np.array(attribute, object),
            "value": np.array(value, object)})
        return list(out["images_bytes"]), list(out["attention_bytes"])

    def schema(self) -> dict:
        """{'attributes': [...], 'values': {attribute: [values]}, 'manipulable': [...], ...}."""
        out = self.predict("schema", {})
        names = [n.decode() for n in out["attributes"]]
        values = {n: [v.decode() for v in row[:k]]
                  for n, row, k in zip(names, out["values"], out["num_values"])}
        manipulable = [n for n, m in zip(names, out["manipulable"]) if m]
        return {"attributes": names, "values": values, "manipulable": manipulable,
                "image_size": int(out["image_size"]), "max_side": int(out["max_side"])}


class GrpcClient(ModelClient):
    def __init__(self, server: str, model_name: str = "amgan", timeout: float = 60.0,
                 version: int | None = None):
        super().__init__(server, model_name, timeout, version)
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        self._grpc = grpc
        limit = 256 * 1024 * 1024
        self.channel = grpc.insecure_channel(server, options=[
            ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def _spec(self, spec, signature=""):
        spec.name = self.model_name
        if signature:
            spec.signature_name = signature
        if self.version:
            spec.version.value = self.version

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as e:
            code = e.code().name
            if code == "UNAVAILABLE":
                raise ServingError(code, f"cannot reach the model server at {self.server} "
                                   f"(is it running?): {e.details()}") from None
            if code == "DEADLINE_EXCEEDED":
                raise ServingError(code, f"the model server at {self.server} did not answer "
                                   f"within {self.timeout} s") from None
            raise ServingError(code, e.details() or code) from None

    def predict(self, signature, inputs):
        from tensorflow_serving.apis import predict_pb2
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(tensor_to_proto(value))
        response = self._call(self.stub.Predict, request)
        return {alias: tensor_from_proto(proto, alias) for alias, proto in response.outputs.items()}

    def metadata(self) -> dict:
        """{signature name: SignatureDef} as the server reports it."""
        from tensorflow_serving.apis import get_model_metadata_pb2
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(self.stub.GetModelMetadata, request)
        sigs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigs)
        return dict(sigs.signature_def)

    def close(self):
        self.channel.close()


class RestClient(ModelClient):
    """`row=True` sends TF Serving's row format ("instances"), one attribute and value per image;
    it cannot carry the scalar region inputs of `manipulate_region`, which always goes
    columnar."""

    def __init__(self, server: str, model_name: str = "amgan", timeout: float = 60.0,
                 version: int | None = None, row: bool = False):
        super().__init__(server, model_name, timeout, version)
        self.base = server if server.startswith("http") else f"http://{server}"
        self.row = row

    def _url(self, suffix: str) -> str:
        version = f"/versions/{self.version}" if self.version else ""
        return f"{self.base}/v1/models/{self.model_name}{version}{suffix}"

    def _request(self, url: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", e.reason)
            except ValueError:
                message = str(e.reason)
            raise ServingError(_FROM_HTTP.get(e.code, "UNKNOWN"), message) from None
        except (socket.timeout, TimeoutError):
            raise ServingError("DEADLINE_EXCEEDED", f"the model server at {self.base} did not "
                               f"answer within {self.timeout} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise ServingError("DEADLINE_EXCEEDED", f"the model server at {self.base} did "
                                   f"not answer within {self.timeout} s") from None
            raise ServingError("UNAVAILABLE", f"cannot reach the model server at {self.base} "
                               f"(is it running?): {e.reason}") from None

    @staticmethod
    def _from_json(alias, value):
        if alias.endswith("_bytes"):
            return np.array([base64.b64decode(v["b64"]) for v in value], object)
        arr = np.array(value, dtype=object if _is_text(value) else None)
        if arr.dtype == object:
            return np.vectorize(lambda s: s.encode(), otypes=[object])(arr)
        return arr

    def predict(self, signature, inputs):
        body = {"signature_name": signature}
        batched = [np.asarray(v) for v in inputs.values() if np.asarray(v).ndim > 0]
        n = len(batched[0]) if batched else 0
        if self.row and n and {"attribute", "value"} <= set(inputs):
            # one name per image, so every input is batched and rows can carry them
            inputs = {a: (np.full(n, np.asarray(v).item(), object) if a in ("attribute", "value")
                          and np.asarray(v).ndim == 0 else v) for a, v in inputs.items()}
        scalars = [a for a, v in inputs.items() if np.asarray(v).ndim == 0]
        if self.row and inputs and not scalars:
            body["instances"] = [{a: array_to_json(np.asarray(v)[i], a) for a, v in
                                  inputs.items()} for i in range(n)]
            out = self._request(self._url(":predict"), body)["predictions"]
            keys = list(out[0]) if isinstance(out[0], dict) else None
            if keys is None:
                raise ServingError("UNKNOWN", "single-output row responses are not used here")
            return {k: self._from_json(k, [row[k] for row in out]) for k in keys}
        body["inputs"] = {a: array_to_json(v, a) for a, v in inputs.items()}
        out = self._request(self._url(":predict"), body)["outputs"]
        if not isinstance(out, dict):
            raise ServingError("UNKNOWN", "expected named outputs")
        return {k: self._from_json(k, v) for k, v in out.items()}

    def status(self) -> dict:
        return self._request(self._url(""))

    def metadata(self) -> dict:
        return self._request(self._url("/metadata"))["metadata"]["signature_def"]["signature_def"]


def _is_text(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str)


def connect(server: str, rest: bool = False, **kwargs) -> ModelClient:
    return RestClient(server, **kwargs) if rest else GrpcClient(server, **{
        k: v for k, v in kwargs.items() if k != "row"})

