"""A model server that speaks TF Serving's protocols, for development and tests without Docker.

    python -m serving.server --model_base_path=models/amgan --port=8500 --rest_api_port=8501
    python -m serving.server --model_config_file=my_models.config --port=8500

What it reproduces of `tensorflow_model_server` (see serving/README.md for the full list):
- gRPC `tensorflow.serving.PredictionService` Predict and GetModelMetadata, and
  `ModelService.GetModelStatus`, with the official `tensorflow-serving-api` messages;
- REST `POST /v1/models/<name>[/versions/<v>]:predict` (row "instances" and columnar "inputs",
  base64 `{"b64": ...}` binaries, `_bytes` outputs base64-encoded), `GET /v1/models/<name>` and
  `GET /v1/models/<name>/metadata`;
- SavedModels loaded through the TF1 session path TF Serving uses (SavedModelBundle: the
  MetaGraph tagged "serve"), SignatureDefs executed by their tensor names;
- TF Serving's status codes and messages for a missing signature (FAILED_PRECONDITION), wrong
  input names (INVALID_ARGUMENT), unknown model or version (NOT_FOUND), graph errors (their own
  code, e.g. INVALID_ARGUMENT from the signatures' checks), and its HTTP mapping of each;
- the "latest" version policy: the highest numeric version directory is served, and a new one is
  picked up by polling (every --file_system_poll_wait_seconds) and swapped in without dropping a
  request.
It is not the C++ server: no batching, no TFRT runtime, no monitoring/SSL configs, no Classify,
Regress or MultiInference (UNIMPLEMENTED), and dtype/shape mismatches against the SignatureDef are
refused before running the graph (INVALID_ARGUMENT, like TF Serving, but with our messages).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from amgan_tf.serving.protocol import (CODES, HTTP_STATUS, ServingError, array_dtype_name,
                                       array_to_json, dtype_name, invalid, json_to_array,
                                       tensor_from_proto, tensor_to_proto)

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # gRPC send/receive limit: images need more than 4 MB
# JSON costs 3-4 characters per uint8 and 10-30x its size in Python objects while parsed.
MAX_REST_BODY_BYTES = 64 * 1024 * 1024
MAX_REST_REQUESTS = 32  # REST requests parsed or running at once; more wait, then get 503
REST_SOCKET_TIMEOUT = 60.0  # seconds a client may stall while sending
MAX_RUN_SECONDS = 24 * 3600.0
DEFAULT_SIGNATURE = "serving_default"


# ---- one loaded version --------------------------------------------------------------------------
class LoadedVersion:
    """A SavedModel version in its own graph and session, as TF Serving's SavedModelBundle."""

    def __init__(self, name: str, version: int, path: str):
        self.name, self.version, self.path = name, version, path
        self.graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signatures = dict(self.meta_graph.signature_def)

    def signature(self, name: str):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        return name, self.signatures[name]

    def check_inputs(self, name: str, sig, specs: dict[str, tuple[str, tuple]]) -> None:
        """Input names, dtypes and shapes ({alias: (dtype name, shape)}) against the signature,
        before anything is converted or run."""
        inputs = specs
        if set(inputs) != set(sig.inputs):
            extra = sorted(set(inputs) - set(sig.inputs))
            missing = sorted(set(sig.inputs) - set(inputs))
            raise invalid(
                f"input size does not match signature: {len(inputs)}!={len(sig.inputs)} "
                f"len({{{','.join(sorted(inputs))}}}) != len({{{','.join(sorted(sig.inputs))}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.")
        for alias, (got, shape) in inputs.items():
            info = sig.inputs[alias]
            want = tf.dtypes.as_dtype(info.dtype)
            if got != want.name:
                raise invalid(f"Expects arg[{alias}] to be {want.name} but {got} is provided")
            if not info.tensor_shape.unknown_rank:
                dims = [d.size for d in info.tensor_shape.dim]
                if len(dims) != len(shape) or any(d not in (-1, v) for d, v in zip(dims, shape)):
                    raise invalid(f"input {alias} has shape {list(shape)}; the signature "
                                  f"{name} expects {dims} (-1: any size)")

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter=(), timeout: float | None = None) -> tuple[str, dict]:
        name, sig = self.signature(signature_name)
        inputs = {alias: np.asarray(v) for alias, v in inputs.items()}
        self.check_inputs(name, sig, {alias: (array_dtype_name(v), v.shape)
                                      for alias, v in inputs.items()})
        feeds = {sig.inputs[alias].name: value for alias, value in inputs.items()}
        aliases = list(output_filter) or sorted(sig.outputs)
        for alias in aliases:
            if alias not in sig.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs "
                              f"expected to be in the set {{{','.join(sorted(sig.outputs))}}}.")
        if len(set(aliases)) != len(aliases):
            raise invalid("duplicate output tensor alias in output_filter")
        options = None
        if timeout is not None:  # gRPC reports ~9e18 s when the client set no deadline
            if timeout <= 0:
                raise ServingError("DEADLINE_EXCEEDED", "deadline exceeded before the run started")
            if timeout < MAX_RUN_SECONDS:
                options = tf.compat.v1.RunOptions(timeout_in_ms=max(int(timeout * 1000), 1))
        try:
            values = self.session.run({a: sig.outputs[a].name for a in aliases}, feed_dict=feeds,
                                      options=options)
        except tf.errors.OpError as e:
            raise ServingError(CODES.get(e.error_code, "UNKNOWN"), _clean(e.message)) from None
        except (ValueError, TypeError) as e:  # feed conversion refused by the session
            raise invalid(str(e)) from None
        return name, values

    def close(self):
        self.session.close()


_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[",
          "Node:", "Additional GRPC error", "0 successful operations", "0 derived errors")


def _clean(message: str) -> str:
    """The useful part of a graph error: the failed assertion, or the error's own lines without
    TF's 'Graph execution error' preamble, node traces and '(0) CODE:' prefixes."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed:" in line:
            return line[line.index("assertion failed:"):]
    kept = [re.sub(r"^\(\d+\) [A-Z_]+: ", "", line) for line in lines
            if not line.startswith(_NOISE) and not line.startswith("File ")]
    return " ".join(kept) or message


# ---- models and versions -------------------------------------------------------------------------
@dataclasses.dataclass
class ModelEntry:
    name: str
    base_path: str
    current: LoadedVersion | None = None
    error: str = ""


def model_versions(base_path: str) -> dict[int, str]:
    """{version: its directory} of the numeric directories holding a saved_model.pb."""
    if not os.path.isdir(base_path):
        return {}
    return {int(d): os.path.join(base_path, d) for d in os.listdir(base_path)
            if d.isdigit() and os.path.exists(os.path.join(base_path, d, "saved_model.pb"))}


class ModelManager:
    """Serves the highest version of each model; a poller loads new versions and swaps them in."""

    def __init__(self, models: dict[str, str], poll_seconds: float = 1.0):
        self.models = {n: ModelEntry(n, os.path.abspath(p)) for n, p in models.items()}
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._failed: set[tuple[str, float]] = set()
        self._stop = threading.Event()
        self._thread = None

    def refresh(self) -> None:
        for entry in self.models.values():
            versions = model_versions(entry.base_path)
            if not versions:
                entry.error = f"no version directory with a saved_model.pb under {entry.base_path}"
                continue
            newest = max(versions)
            if entry.current is not None and entry.current.version == newest:
                continue
            stamp = (versions[newest], os.path.getmtime(versions[newest]))
            if stamp in self._failed:  # tried already and unchanged since: do not retry
                continue
            try:
                loaded = LoadedVersion(entry.name, newest, versions[newest])
            except Exception as e:  # a broken version must not take the served one down
                self._failed.add(stamp)
                entry.error = f"version {newest} failed to load: {e}"
                log.error("Model %s: %s", entry.name, entry.error)
                continue
            with self._lock:
                entry.current, entry.error = loaded, ""
            # The previous version is not closed here: requests still running on it hold a
            # reference and finish; its session is released when the last one drops it.
            log.info("Model %s: serving version %d from %s", entry.name, newest, loaded.path)

    def start(self) -> "ModelManager":
        self.refresh()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="version-poller")
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self):
        self._stop.set()

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        entry = self.models.get(name)
        what = f"Specific({name}, {version})" if version else f"Latest({name})"
        if entry is None:
            raise ServingError("NOT_FOUND", f"Servable not found for request: {what}")
        with self._lock:
            current = entry.current
        if current is None or (version and current.version != version):
            raise ServingError("NOT_FOUND", f"Servable not found for request: {what}")
        return current

    def status(self, name: str, version: int | None = None) -> list[dict]:
        entry = self.models.get(name)
        if entry is None:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        with self._lock:
            current = entry.current
        if current is None or (version and current.version != version):
            raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}"
                               if version else f"Could not find any versions of model {name}")
        return [{"version": str(current.version), "state": "AVAILABLE",
                 "status": {"error_code": "OK", "error_message": ""}}]


# ---- gRPC ----------------------------------------------------------------------------------------
def _grpc_code(name: str) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    def _fail(self, context, error: ServingError):
        context.abort(_grpc_code(error.code), error.message)

    def Predict(self, request, context):
        try:
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            model = self.manager.get(spec.name, version)
            name, sig = model.signature(spec.signature_name)
            model.check_inputs(name, sig, {  # before any tensor is converted
                alias: (dtype_name(proto.dtype), tuple(d.size for d in proto.tensor_shape.dim))
                for alias, proto in request.inputs.items()})
            inputs = {alias: tensor_from_proto(proto, alias)
                      for alias, proto in request.inputs.items()}
            remaining = context.time_remaining()
            name, outputs = model.predict(spec.signature_name, inputs, request.output_filter,
                                          timeout=remaining)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = model.version
            response.model_spec.signature_name = name
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(tensor_to_proto(value))
            return response
        except ServingError as e:
            self._fail(context, e)

    def GetModelMetadata(self, request, context):
        try:
            if list(request.metadata_field) != ["signature_def"]:
                raise invalid("Metadata field signature_def must be requested (the only one "
                              "supported, as in TF Serving)")
            spec = request.model_spec
            model = self.manager.get(spec.name, spec.version.value if spec.HasField("version")
                                     else None)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = model.name
            response.model_spec.version.value = model.version
            sigs = get_model_metadata_pb2.SignatureDefMap()
            for key, sig in model.signatures.items():
                sigs.signature_def[key].CopyFrom(sig)
            response.metadata["signature_def"].Pack(sigs)
            return response
        except ServingError as e:
            self._fail(context, e)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Only Predict and GetModelMetadata are "
                      "implemented by this development server.")

    Classify = Regress = MultiInference = _unimplemented


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        try:
            spec = request.model_spec
            entries = self.manager.status(spec.name, spec.version.value
                                          if spec.HasField("version") else None)
        except ServingError as e:
            context.abort(_grpc_code(e.code), e.message)
        response = get_model_status_pb2.GetModelStatusResponse()
        for entry in entries:
            status = response.model_version_status.add()
            status.version = int(entry["version"])
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def grpc_server(manager: ModelManager, port: int, workers: int = 16) -> tuple[grpc.Server, int]:
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=workers),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    bound = server.add_insecure_port(f"0.0.0.0:{port}")
    if not bound:
        raise OSError(f"Cannot listen for gRPC on port {port} (in use?).")
    return server, bound


# ---- REST ----------------------------------------------------------------------------------------
_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                    r"(?P<rest>/metadata|:predict|:classify|:regress)?$")


def rest_predict(model: LoadedVersion, body: dict) -> dict:
    if not isinstance(body, dict):
        raise invalid("JSON Value: the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise invalid('Missing \'inputs\' or \'instances\' key (exactly one of the two)')
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise invalid("'signature_name' must be a string")
    name, sig = model.signature(signature_name)
    aliases = sorted(sig.inputs)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid("'instances' must be a non-empty list")
        if len(aliases) == 1 and not all(isinstance(r, dict) for r in rows):
            columns = {aliases[0]: rows}
        else:
            if not all(isinstance(r, dict) for r in rows):
                raise invalid("with several inputs, every instance must be an object of named "
                              "inputs")
            keys = set(rows[0])
            if any(set(r) != keys for r in rows):
                raise invalid("every instance must name the same inputs")
            columns = {k: [r[k] for r in rows] for k in keys}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            if len(aliases) != 1:
                raise invalid("'inputs' must be an object of named inputs for this signature")
            columns = {aliases[0]: columns}
    inputs = {}
    for alias, value in columns.items():
        if alias not in sig.inputs:
            inputs[alias] = np.zeros(0)  # reported by predict's input-name check
            continue
        inputs[alias] = json_to_array(value, tf.dtypes.as_dtype(sig.inputs[alias].dtype), alias)
    _, outputs = model.predict(name, inputs)
    if "instances" in body:
        sizes = {np.asarray(v).shape[:1] for v in outputs.values()}
        if len(sizes) != 1 or () in sizes:
            raise invalid("row format needs every output batched alike; use the columnar "
                          "'inputs' format for this signature")
        n = sizes.pop()[0]
        rows = [{a: array_to_json(v[i], a) for a, v in outputs.items()} for i in range(n)]
        return {"predictions": rows if len(outputs) > 1 else [next(iter(r.values())) for r in rows]}
    encoded = {a: array_to_json(v, a) for a, v in outputs.items()}
    return {"outputs": encoded if len(encoded) > 1 else next(iter(encoded.values()))}


def _metadata_json(model: LoadedVersion) -> dict:
    return {"model_spec": {"name": model.name, "signature_name": "",
                           "version": str(model.version)},
            "metadata": {"signature_def": {"signature_def": {
                k: json_format.MessageToDict(v) for k, v in model.signatures.items()}}}}


def rest_handler(manager: ModelManager):
    slots = threading.BoundedSemaphore(MAX_REST_REQUESTS)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = REST_SOCKET_TIMEOUT  # a stalled sender cannot hold a thread forever

        def log_message(self, *args):  # requests are not logged (tests send thousands)
            pass

        def _send(self, status: int, payload: dict):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: ServingError):
            self._send(HTTP_STATUS.get(error.code, 500), {"error": error.message})

        def _route(self):
            match = _ROUTE.match(self.path.split("?")[0])
            if not match:
                raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
            version = int(match["version"]) if match["version"] else None
            return match["name"], version, match["rest"] or ""

        def do_GET(self):
            try:
                name, version, rest = self._route()
                if rest == "/metadata":
                    self._send(200, _metadata_json(manager.get(name, version)))
                elif rest == "":
                    self._send(200, {"model_version_status": manager.status(name, version)})
                else:
                    raise ServingError("NOT_FOUND", f"Malformed request: GET {self.path}")
            except ServingError as e:
                self._error(e)

        def do_POST(self):
            if not slots.acquire(timeout=REST_SOCKET_TIMEOUT):
                self.close_connection = True
                return self._error(ServingError("UNAVAILABLE", "too many requests at once; "
                                                "retry later"))
            try:
                self._post()
            finally:
                slots.release()

        def _post(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_REST_BODY_BYTES:
                self.close_connection = True
                return self._error(invalid(f"request body must have a Content-Length of at most "
                                           f"{MAX_REST_BODY_BYTES} bytes"))
            try:
                raw = self.rfile.read(length)
            except OSError:  # the client stalled past the socket timeout or went away
                self.close_connection = True
                return
            try:
                name, version, rest = self._route()
                if rest in (":classify", ":regress"):
                    raise ServingError("UNIMPLEMENTED", f"{rest[1:]} is not implemented by this "
                                       "development server")
                if rest != ":predict":
                    raise ServingError("NOT_FOUND", f"Malformed request: POST {self.path}")
                model = manager.get(name, version)
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as e:
                    raise invalid(f"JSON Parse error: {e}") from None
                self._send(200, rest_predict(model, body))
            except ServingError as e:
                self._error(e)
            except RecursionError:
                self._error(invalid("JSON value nested too deeply"))

    return Handler


def rest_server(manager: ModelManager, port: int) -> ThreadingHTTPServer:
    ThreadingHTTPServer.daemon_threads = True
    return ThreadingHTTPServer(("0.0.0.0", port), rest_handler(manager))


# ---- the whole server ----------------------------------------------------------------------------
def read_model_config(path: str) -> dict[str, str]:
    """{name: base_path} from a TF Serving models.config (text ModelServerConfig)."""
    config = model_server_config_pb2.ModelServerConfig()
    with open(path) as f:
        try:
            text_format.Parse(f.read(), config)
        except text_format.ParseError as e:
            raise ValueError(f"{path} is not a ModelServerConfig text proto: {e}") from None
    models = {}
    for m in config.model_config_list.config:
        base = m.base_path
        if not os.path.isabs(base):  # relative paths: relative to the config file
            base = os.path.join(os.path.dirname(os.path.abspath(path)), base)
        models[m.name] = base
    if not models:
        raise ValueError(f"{path} lists no models (model_config_list {{ config {{ ... }} }}).")
    return models


@dataclasses.dataclass
class RunningServer:
    manager: ModelManager
    grpc: grpc.Server
    grpc_port: int
    rest: ThreadingHTTPServer | None
    rest_port: int

    def stop(self):
        self.manager.stop()
        self.grpc.stop(grace=1)
        if self.rest is not None:
            self.rest.shutdown()
            self.rest.server_close()


def serve(models: dict[str, str], port: int = 8500, rest_api_port: int = 8501,
          poll_seconds: float = 1.0) -> RunningServer:
    manager = ModelManager(models, poll_seconds).start()
    for entry in manager.models.values():
        if entry.current is None:
            log.warning("Model %s: nothing to serve yet (%s); waiting for a version.", entry.name,
                        entry.error)
    server, bound = grpc_server(manager, port)
    server.start()
    rest, rest_port = None, 0
    if rest_api_port:
        rest = rest_server(manager, rest_api_port)
        rest_port = rest.server_address[1]
        threading.Thread(target=rest.serve_forever, daemon=True, name="rest").start()
    return RunningServer(manager, server, bound, rest, rest_port)


def wait_forever(running: RunningServer) -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()
