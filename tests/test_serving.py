"""The model server and clients end to end: export -> serve -> gRPC and REST clients, equal to the
CLI; 1,000+ malformed requests; 16 concurrent clients; a new version hot-swapped under load.

The server runs as `python -m serving.server` in a subprocess on loopback ports, as a user runs it.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from amgan_tf import export_lib, manipulate_lib, trained
from amgan_tf.serving.client import GrpcClient, RestClient, ServingError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT}
PHOTO = os.path.join(ROOT, "tests", "data", "clothing_small", "test", "t-shirt",
                     "05d01bf9-6ff5-4c5e-b946-b4ca004a125b.jpg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
    return tiny_workdir


@pytest.fixture(scope="module")
def server(workdir, tmp_path_factory):
    """(process, grpc address, rest address, model base path) with version 1 exported."""
    base = str(tmp_path_factory.mktemp("served"))
    export_lib.export_saved_model(trained.load_generator(workdir), base)
    g, r = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.server", f"--model_base_path={base}/amgan",
         f"--port={g}", f"--rest_api_port={r}", "--file_system_poll_wait_seconds=0.2"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "Serving amgan: gRPC on port ..., REST on port ..."
    assert "Serving amgan" in line, proc.stderr.read()[-3000:] if proc.poll() is not None else line
    yield proc, f"127.0.0.1:{g}", f"127.0.0.1:{r}", os.path.join(base, "amgan")
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tool(workdir):
    return manipulate_lib.Manipulator(trained.load_generator(workdir))


def photo() -> np.ndarray:
    return manipulate_lib.read_image(PHOTO)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


# ---- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["grpc", "rest_columnar", "rest_row"])
def test_clients_equal_the_cli(server, tool, transport):
    _, g, r, _ = server
    client = (GrpcClient(g) if transport == "grpc"
              else RestClient(r, row=transport == "rest_row"))
    image = photo()
    out, att = client.manipulate(image[None], "sleeve", "long")
    want, mask = tool.manipulate_image(image, manipulate_lib.Edit("sleeve", "long"))
    assert out.shape == (1,) + image.shape and out.dtype == np.uint8
    assert np.abs(out[0].astype(int) - want).max() <= 1
    np.testing.assert_allclose(att[0, ..., 0], mask, atol=1e-5)
    for mode in ("inside", "outside"):
        region = manipulate_lib.Region("sleeve", "sleeveless", 0.3, mode)
        out, _ = client.manipulate(image[None], "colour", "orange", region)
        want, _ = tool.manipulate_image(image, manipulate_lib.Edit("colour", "orange"), region)
        assert np.abs(out[0].astype(int) - want).max() <= 1
    with open(PHOTO, "rb") as f:
        png, _ = client.manipulate_bytes([f.read()], "pattern", "stripes")
    want, _ = tool.manipulate_image(image, manipulate_lib.Edit("pattern", "stripes"))
    decoded = tf.io.decode_png(png[0]).numpy()
    # the server decodes the JPEG with TF's decoder, the CLI with PIL: allow their difference
    assert decoded.shape == want.shape and np.abs(decoded.astype(int) - want).mean() < 2
    schema = client.schema()
    assert schema["manipulable"] == ["sleeve", "colour", "pattern"]
    assert schema["values"]["pattern"] == ["plain", "stripes", "dots", "checks"]
    metadata = client.metadata()
    assert {"serving_default", "manipulate_region", "manipulate_bytes", "schema"} <= set(metadata)


def test_metadata_and_status_over_grpc_and_rest(server):
    _, g, r, _ = server
    sig = GrpcClient(g).metadata()["serving_default"]
    assert set(sig.inputs) == {"images", "attribute", "value"}
    assert sig.inputs["images"].dtype == types_pb2.DT_UINT8
    assert [d.size for d in sig.inputs["images"].tensor_shape.dim] == [-1, -1, -1, 3]
    status = RestClient(r).status()["model_version_status"]
    assert status == [{"version": "1", "state": "AVAILABLE",
                       "status": {"error_code": "OK", "error_message": ""}}]


def test_server_errors_keep_their_codes(server):
    _, g, r, _ = server
    for client in (GrpcClient(g), RestClient(r)):
        with pytest.raises(ServingError) as info:
            client.manipulate(np.zeros((1, 8, 8, 3), np.uint8), "sleeves", "long")
        assert info.value.code == "INVALID_ARGUMENT"
        assert "valid attributes: sleeve, colour, pattern" in info.value.message
        with pytest.raises(ServingError) as info:
            client.predict("no_such_signature", {})
        assert info.value.code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT")  # REST: 400
        assert 'Serving signature key "no_such_signature" not found' in info.value.message
    with open(PHOTO, "rb") as f:
        corrupt = f.read()[:600] + b"\0" * 64  # a JPEG header, then garbage
    for client in (GrpcClient(g), RestClient(r)):
        with pytest.raises(ServingError) as info:
            client.manipulate_bytes([corrupt], "colour", "red")
        assert info.value.code == "INVALID_ARGUMENT" and "JPEG" in info.value.message
        assert "Graph execution error" not in info.value.message
    for client in (GrpcClient(g, model_name="other"), RestClient(r, version=7)):
        with pytest.raises(ServingError) as info:
            client.schema()
        assert info.value.code == "NOT_FOUND" and "Servable not found" in info.value.message


def test_grpc_request_without_a_deadline(server):
    """Many clients send no deadline (grpcurl, Go's context.Background()): still answered."""
    _, g, _, _ = server
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(g))
    request = _grpc_request("serving_default", {
        "images": np.zeros((1, 8, 8, 3), np.uint8), "attribute": np.array("colour", object),
        "value": np.array("red", object)}, "amgan")
    assert stub.Predict(request).outputs["images"].tensor_shape.dim[1].size == 8


def test_version_directories(tmp_path):
    from amgan_tf.serving.server import model_versions
    for name in ("1", "03", "x7", "12"):
        os.makedirs(tmp_path / name)
        if name != "12":  # no saved_model.pb: not a version (yet)
            (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert model_versions(str(tmp_path)) == {1: str(tmp_path / "1"), 3: str(tmp_path / "03")}


def test_clients_report_a_server_that_is_down_or_slow(server):
    port = free_port()
    for client in (GrpcClient(f"127.0.0.1:{port}", timeout=5), RestClient(f"127.0.0.1:{port}")):
        with pytest.raises(ServingError) as info:
            client.schema()
        assert info.value.code == "UNAVAILABLE" and "is it running?" in info.value.message
    _, g, _, _ = server
    big = np.zeros((4, 1024, 1024, 3), np.uint8)
    with pytest.raises(ServingError) as info:
        GrpcClient(g, timeout=0.001).manipulate(big, "colour", "red")
    assert info.value.code == "DEADLINE_EXCEEDED" and "did not answer within" in info.value.message


# ---- the client CLI ----------------------------------------------------------------------------
def _client_cli(*args):
    return subprocess.run([sys.executable, "-m", "serving.client", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("rest", [False, True])
def test_client_cli_equals_the_manipulate_cli(server, tool, tmp_path, rest):
    _, g, r, _ = server
    out = tmp_path / "out.png"
    result = _client_cli(f"--server={r if rest else g}", f"--rest={rest}", f"--image={PHOTO}",
                         "--attribute=colour", "--value=orange", "--region_attribute=sleeve",
                         "--region_value=sleeveless", "--region_threshold=0.3",
                         "--region_mode=outside", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    want, mask = tool.manipulate_image(photo(), manipulate_lib.Edit("colour", "orange"),
                                       manipulate_lib.Region("sleeve", "sleeveless", 0.3,
                                                             "outside"))
    assert np.abs(np.asarray(Image.open(out)).astype(int) - want).max() <= 1
    att = np.asarray(Image.open(tmp_path / "out_attention.png")).astype(int)
    assert np.abs(att - np.round(mask * 255)).max() <= 1


def test_client_cli_sends_encoded_files(server, tool, tmp_path):
    _, _, r, _ = server
    out = tmp_path / "bytes.png"
    result = _client_cli(f"--server={r}", "--rest", "--send_bytes", f"--image={PHOTO}",
                         "--attribute=sleeve", "--value=short", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    want, _ = tool.manipulate_image(photo(), manipulate_lib.Edit("sleeve", "short"))
    got = np.asarray(Image.open(out)).astype(int)
    assert got.shape == want.shape and np.abs(got - want).mean() < 2  # TF vs PIL JPEG decoding
    assert os.path.exists(tmp_path / "bytes_attention.png")


def test_client_cli_errors(server, tmp_path):
    _, g, _, _ = server
    down = _client_cli(f"--server=127.0.0.1:{free_port()}", f"--image={PHOTO}",
                       "--attribute=sleeve", "--value=long", f"--output={tmp_path}/o.png")
    assert down.returncode == 1 and "cannot reach the model server" in down.stderr
    bad = _client_cli(f"--server={g}", f"--image={PHOTO}", "--attribute=sleeve",
                      "--value=cap", f"--output={tmp_path}/o.png")
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "valid values" in bad.stderr
    for result in (down, bad):
        assert "Traceback" not in result.stderr


# ---- malformed requests --------------------------------------------------------------------------
def _proto(dtype, shape, content=b"", **values):
    p = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]))
    p.tensor_content = content
    for field, v in values.items():
        getattr(p, field).extend(v)
    return p


def _grpc_cases(rng):
    """(signature, inputs as TensorProtos or arrays, model name, expected code) of bad requests."""
    img = np.zeros((1, 8, 8, 3), np.uint8)
    good = {"images": img, "attribute": np.array("colour", object),
            "value": np.array("red", object)}
    cases = []
    for _ in range(8):
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        cases += [
            ("serving_default", {**good, "images": np.zeros((1, h, w, 3), np.float32)}),
            ("serving_default", {**good, "images": np.zeros((h, w, 3), np.uint8)}),
            ("serving_default", {**good, "images": np.zeros((1, h, w, 4), np.uint8)}),
            ("serving_default", {**good, "images": np.zeros((0, h, w, 3), np.uint8)}),
            ("serving_default", {**good, "images": np.zeros((1, 0, w, 3), np.uint8)}),
            ("serving_default", {**good, "images": np.zeros((1, 4097 + h, 2, 3), np.uint8)}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_UINT8, [1, h, w, 3],
                                                          content=b"\0" * (h * w))}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_UINT8,
                                                          [10 ** 6, 10 ** 6, h, 3])}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_UINT8, [1, h, w, 3],
                                                          int_val=[1, 2])}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_UINT8, [-1, h, w, 3])}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_UINT8, [1, h, w, 3],
                                                          int_val=[256 + h])}),
            ("serving_default", {**good, "images": _proto(types_pb2.DT_STRING, [10 ** 8, 2, 2, 3],
                                                          string_val=[b"x"])}),
            ("serving_default", {**good, "attribute": np.array("".join(
                chr(c) for c in rng.integers(97, 123, 6)), object)}),
            ("serving_default", {**good, "value": np.array(rng.bytes(5), object)}),
            ("serving_default", {**good, "attribute": np.array("body_shape", object),
                                 "value": np.array("slim", object)}),
            ("serving_default", {**good, "attribute": np.array(["colour"] * 3, object)}),
            ("serving_default", {**good, "attribute": np.array(3, np.int32)}),
            ("serving_default", {"images": img, "attribute": good["attribute"]}),
            ("serving_default", {**good, "extra": np.array(1.0, np.float32)}),
            ("manipulate_region", {**good, "region_attribute": np.array("sleeve", object),
                                   "region_value": np.array("long", object),
                                   "region_threshold": np.array(float(rng.uniform(1, 9)),
                                                                np.float32),
                                   "region_mode": np.array("inside", object)}),
            ("manipulate_region", {**good, "region_attribute": np.array("sleeve", object),
                                   "region_value": np.array("long", object),
                                   "region_threshold": np.array(0.5, np.float32),
                                   "region_mode": np.array(rng.bytes(4), object)}),
            ("manipulate_bytes", {"images_bytes": np.array([rng.bytes(int(rng.integers(0, 300)))],
                                                           object),
                                  "attribute": good["attribute"], "value": good["value"]}),
            ("manipulate_bytes", {"images_bytes": np.array(
                [tf.io.encode_jpeg(np.full((h, w, 3), 9, np.uint8)).numpy()[:int(
                    rng.integers(2, 40))]], object), "attribute": good["attribute"],
                "value": good["value"]}),
            ("manipulate_bytes", {"images_bytes": np.array(
                [tf.io.encode_png(np.full((h, w, 3), 9, np.uint8)).numpy()[:int(
                    rng.integers(8, 60))]], object), "attribute": good["attribute"],
                "value": good["value"]}),
            ("manipulate_bytes", {"images_bytes": np.array([], object).reshape(0),
                                  "attribute": good["attribute"], "value": good["value"]}),
        ]
    cases = [(s, i, "amgan", "INVALID_ARGUMENT") for s, i in cases]
    cases += [("no_such_signature", good, "amgan", "FAILED_PRECONDITION"),
              ("serving_default", good, "no_such_model", "NOT_FOUND")]
    return cases


def _grpc_request(signature, inputs, model):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(value if isinstance(value, tensor_pb2.TensorProto)
                                       else tf.make_tensor_proto(value))
    return request


def _rest_cases(rng):
    """(raw body bytes, url suffix, expected HTTP status) of bad requests."""
    good = {"images": np.zeros((1, 4, 4, 3), int).tolist(), "attribute": "colour", "value": "red"}
    cases = []
    for _ in range(8):
        n = int(rng.integers(1, 50))
        cases += [
            (rng.bytes(n), ":predict", 400),
            (b"{" * n, ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[300, 0, 0]]]]}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[-n, 0, 0]]]]}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[0.5, 0, 0]]]]}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[["a", "b", "c"]]]]}}).encode(),
             ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[1, 2, 3], [1, 2]]]]}}).encode(),
             ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[1] * (n + 3)]]]}}).encode(), ":predict",
             400),
            (json.dumps({"inputs": {**good, "attribute": "x" * n}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "value": {"b64": "!!" * n}}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "value": n}}).encode(), ":predict", 400),
            (json.dumps({"inputs": {**good, "images": [[[[True, False, True]]]]}}).encode(),
             ":predict", 400),
            (json.dumps({"inputs": good, "instances": [good]}).encode(), ":predict", 400),
            (json.dumps({"instances": []}).encode(), ":predict", 400),
            (json.dumps({"instances": [good, {"images": good["images"]}]}).encode(),
             ":predict", 400),
            (json.dumps({"inputs": {"images": good["images"]}}).encode(), ":predict", 400),
            (json.dumps({"signature_name": "nope" * n, "inputs": good}).encode(), ":predict", 400),
            (json.dumps({"signature_name": "manipulate_bytes", "inputs": {
                "images_bytes": [{"b64": base64.b64encode(rng.bytes(n)).decode()}],
                "attribute": "colour", "value": "red"}}).encode(), ":predict", 400),
            (json.dumps({"signature_name": "manipulate_region", "inputs": {
                **good, "region_attribute": "sleeve", "region_value": "long",
                "region_threshold": 0.5, "region_mode": "x" * n}}).encode(), ":predict", 400),
            (json.dumps([good] * n).encode(), ":predict", 400),
            (b"[" * 100_000 + b"]" * 100_000, ":predict", 400),
            (json.dumps({"inputs": good}).encode(), ":classify", 501),
            (json.dumps({"inputs": good}).encode(), f"/versions/{n + 5}:predict", 404),
            (json.dumps({"inputs": good}).encode(), ":explode", 404),
        ]
    return cases


def _post(rest, suffix, body, model="amgan"):
    req = urllib.request.Request(f"http://{rest}/v1/models/{model}{suffix}", data=body,
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_fuzz_malformed_requests(server):
    """At least 1,000 malformed requests over gRPC and REST: every one answered with TF Serving's
    code and a message, the server alive and its memory bounded, a valid request right after
    each batch of bad ones."""
    proc, g, r, _ = server
    rng = np.random.default_rng(0)
    channel = grpc.insecure_channel(g, options=[("grpc.max_send_message_length", 1 << 28)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    valid = GrpcClient(g)
    valid.manipulate(np.zeros((1, 16, 16, 3), np.uint8), "colour", "red")  # warm up
    rss_start = rss_mb(proc.pid)
    counts = {"grpc": 0, "rest": 0}
    while counts["grpc"] + counts["rest"] < 1100:
        for signature, inputs, model, code in _grpc_cases(rng):
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(_grpc_request(signature, inputs, model), timeout=60)
            assert info.value.code().name == code, (signature, info.value.details())
            assert info.value.details()
            counts["grpc"] += 1
        for body, suffix, status in _rest_cases(rng):
            got, payload = _post(r, suffix, body)
            assert got == status, (body[:200], payload)
            assert payload["error"]
            counts["rest"] += 1
        out, _ = valid.manipulate(np.full((1, 20, 12, 3), 128, np.uint8), "sleeve", "short")
        assert out.shape == (1, 20, 12, 3)
        assert proc.poll() is None
    # A header promising a body far over the limit is refused without reading it.
    host, port = r.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/models/amgan:predict HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 999999999999\r\n\r\n")
        assert b"400" in s.recv(200).split(b"\r\n")[0]
    growth = rss_mb(proc.pid) - rss_start
    print(f"\nfuzz: {counts['grpc']} gRPC + {counts['rest']} REST malformed requests, all answered;"
          f" server RSS {rss_start:.0f} MB -> {rss_start + growth:.0f} MB")
    assert sum(counts.values()) >= 1000 and min(counts.values()) >= 400
    assert growth < 300, f"server memory grew by {growth:.0f} MB"


# ---- load and hot swap ---------------------------------------------------------------------------
def _hammer(make_client, seconds, results, stop=None):
    client = make_client()
    image = np.random.default_rng(threading.get_ident() % 1000).integers(0, 256, (1, 48, 40, 3),
                                                                        np.uint8)
    end = time.time() + seconds
    while time.time() < end and not (stop and stop.is_set()):
        t = time.perf_counter()
        try:
            out, _ = client.manipulate(image, "colour", "blue")
            assert out.shape == image.shape
            results.append(("ok", time.perf_counter() - t))
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            results.append((repr(e), time.perf_counter() - t))


def test_sixteen_concurrent_clients(server):
    _, g, r, _ = server
    results = []
    threads = [threading.Thread(target=_hammer, args=(
        (lambda: GrpcClient(g)) if i % 2 else (lambda: RestClient(r)), 6.0, results))
        for i in range(16)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - start
    errors = [e for e, _ in results if e != "ok"]
    latencies = np.array([t for e, t in results if e == "ok"]) * 1000
    print(f"\n16 clients (8 gRPC, 8 REST), 48x40 images: {len(latencies)} requests in {wall:.1f} s "
          f"= {len(latencies) / wall:.1f} req/s; latency p50 {np.percentile(latencies, 50):.0f} "
          f"ms, p99 {np.percentile(latencies, 99):.0f} ms; errors {len(errors)}")
    assert not errors, errors[:3]
    assert len(latencies) >= 16


def test_new_version_is_swapped_in_under_load(server, workdir):
    proc, g, r, base = server
    results, stop = [], threading.Event()
    threads = [threading.Thread(target=_hammer, args=(
        (lambda: GrpcClient(g)) if i % 2 else (lambda: RestClient(r)), 120.0, results, stop))
        for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    version = export_lib.export_saved_model(trained.load_generator(workdir), os.path.dirname(base))
    deadline = time.time() + 60
    served = None
    while time.time() < deadline:
        served = RestClient(r).status()["model_version_status"][0]["version"]
        if served == str(version.version):
            break
        time.sleep(0.1)
    time.sleep(1.0)  # keep the clients going on the new version
    stop.set()
    for t in threads:
        t.join()
    assert served == str(version.version) == "2"
    errors = [e for e, _ in results if e != "ok"]
    assert not errors, errors[:3]
    assert len(results) >= 8
    request = _grpc_request("serving_default", {
        "images": np.zeros((1, 8, 8, 3), np.uint8), "attribute": np.array("colour", object),
        "value": np.array("red", object)}, "amgan")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(g))
    assert stub.Predict(request, timeout=60).model_spec.version.value == 2
    assert proc.poll() is None
