"""TFLite and TF.js exports of a trained generator, for phones and browsers.

Both formats lack string lookups (TFLite builtins, TF.js graph models) and TF.js has no uint8, so
the portable graph takes the manipulation VECTOR instead of attribute/value names: a client reads
`manipulations.json` (written beside the model), which lists the schema and the exact vector of
every (attribute, value), and sends that row. One graph does plain and region edits without
control flow (`edit.apply_stacked_edit`): ms [1, D] is a plain edit, ms [2, D] a region edit whose
second row names the region. Pre- and post-processing (pad to square, resize, full-resolution
composite) are in the graph, with plain bilinear resizing (neither runtime has the antialiasing
op), so results equal the SavedModel's on images of the training size and differ by the
antialiasing of the downscale on others.

- TFLite (`export_tflite`): a fixed input size (default: the training size), uint8 image
  [1, S, S, 3]; signatures `manipulate` (ms [1, D]) and `manipulate_region` (ms [2, D],
  region_threshold, region_inside). Weights float32, float16 or int8 (dynamic range).
- TF.js (`export_tfjs`): any image size [1, H, W, 3] (int32 in TF.js), ms [K, D]; float16 weights
  optional. Needs the `tensorflowjs` converter (see BUILD_NOTES.md for the install recipe).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import types

import numpy as np
import tensorflow as tf

from amgan_tf.edit import REGION_THRESHOLD, apply_stacked_edit
from amgan_tf.export_lib import GeneratorModule, check_exportable, directory_bytes
from amgan_tf.runtime import MissingDependencyError

MANIFEST_FILE = "manipulations.json"
TFLITE_FILE = "amgan.tflite"
# int8: dynamic-range quantisation (int8 weights, int8 kernels where the runtime has them, float
# activations between them). Full-integer int8 (a representative dataset) was measured unusable:
# BUILD_NOTES.md.
TFLITE_PRECISIONS = ("fp32", "fp16", "int8")
TFJS_QUANTIZATIONS = ("none", "float16")


def write_manifest(output: str, trained, image_size: int, fmt: str, **extra) -> None:
    """OUTPUT/manipulations.json: what a client needs to build requests, the schema and every
    edit's vector."""
    schema = trained.schema
    vectors = {a.name: {v: schema.encode(a.name, v).astype(float).tolist() for v in a.values}
               for a in schema.manipulated}
    info = {
        "format": fmt, "image_size": int(image_size), "training_image_size": trained.image_size,
        "step": trained.step, "m_dim": schema.m_dim, "resize": trained.resize,
        "attention_floor": trained.attention_floor,
        "attributes": [{"name": a.name, "manipulated": a.manipulated, "values": list(a.values)}
                       for a in schema.attributes],
        "m": vectors, "default_region_threshold": REGION_THRESHOLD,
        "inputs": "image uint8 [1,H,W,3] (int32 in TF.js); ms float32 [K, m_dim]: row 0 = the "
                  "edit's vector from 'm'; a second row = the region's vector (region edit); "
                  "region_threshold float32 scalar; region_inside float32 scalar (1 inside, 0 "
                  "outside)",
        "outputs": "image uint8 [1,H,W,3] (int32 in TF.js); attention float32 [1,H,W,1]",
        **extra}
    with open(os.path.join(output, MANIFEST_FILE), "w") as f:
        json.dump(info, f, indent=1)


class PortableModule(GeneratorModule):
    """The vector-driven edit for TFLite and TF.js."""

    def __init__(self, generator, schema, image_size: int, subpixel: bool = True,
                 resize: str = "pad", attention_floor: float = 0.0):
        super().__init__(generator, image_size, subpixel, resize, attention_floor)
        self.__dict__["_m_dim"] = schema.m_dim

    @classmethod
    def of(cls, trained) -> "PortableModule":
        """The module of a `amgan_tf.trained.TrainedGenerator`, editing as its training saw."""
        return cls(trained.G, trained.schema, trained.image_size, resize=trained.resize,
                   attention_floor=trained.attention_floor)

    def edit(self, image, ms, region_threshold, region_inside):
        out, mask = apply_stacked_edit(self._generate, image, ms, self._size, region_threshold,
                                       region_inside > 0.5, antialias=False, resize=self._resize,
                                       attention_floor=self._floor)
        return {"image": out, "attention": mask}

    def functions(self, side: int | None) -> dict:
        """Concrete functions at a fixed side (TFLite) or any size (side None, TF.js)."""
        image = tf.TensorSpec([1, side, side, 3], tf.uint8, name="image")
        edit = tf.function(self.edit)
        if side is None:
            return {"serving_default": edit.get_concrete_function(
                image, tf.TensorSpec([None, self._m_dim], tf.float32, name="ms"),
                tf.TensorSpec([], tf.float32, name="region_threshold"),
                tf.TensorSpec([], tf.float32, name="region_inside"))}

        def plain(image, ms):
            return self.edit(image, ms, tf.constant(REGION_THRESHOLD), tf.constant(1.0))

        return {
            "manipulate": tf.function(plain).get_concrete_function(
                image, tf.TensorSpec([1, self._m_dim], tf.float32, name="ms")),
            "manipulate_region": edit.get_concrete_function(
                image, tf.TensorSpec([2, self._m_dim], tf.float32, name="ms"),
                tf.TensorSpec([], tf.float32, name="region_threshold"),
                tf.TensorSpec([], tf.float32, name="region_inside"))}


def _fresh_dir(output: str) -> None:
    if os.path.exists(output) and os.listdir(output):
        raise FileExistsError(f"{output} exists and is not empty; choose a new --output.")
    os.makedirs(output, exist_ok=True)


def export_tflite(trained, output: str, precision: str = "fp32",
                  image_size: int | None = None) -> dict:
    """Write OUTPUT/amgan.tflite and OUTPUT/manipulations.json."""
    check_exportable(trained)
    if precision not in TFLITE_PRECISIONS:
        raise ValueError(f"Unknown TFLite precision {precision!r}; choose one of: "
                         f"{', '.join(TFLITE_PRECISIONS)}.")
    side = int(image_size or trained.image_size)
    if side < 8 or side > 1024:
        raise ValueError(f"--image_size must be between 8 and 1024 px, got {side}.")
    _fresh_dir(output)
    module = PortableModule.of(trained)
    functions = module.functions(side)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(functions))
        if precision in ("fp16", "int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        flat = converter.convert()
    path = os.path.join(output, TFLITE_FILE)
    with open(path, "wb") as f:
        f.write(flat)
    write_manifest(output, trained, side, "tflite", precision=precision,
                   signatures=sorted(functions), model=TFLITE_FILE)
    return {"path": path, "bytes": len(flat), "precision": precision, "image_size": side}


def _import_tfjs_converter():
    """tensorflowjs' converter imports jax and tensorflow_decision_forests at module level though
    a SavedModel conversion uses neither; neither can be installed beside TF 2.21, so empty
    stand-ins are registered first (DESIGN.md's recipe)."""
    import keras  # noqa: F401  (the real ones first, so the stand-ins never shadow them)
    for name in ("jax", "jax.experimental", "jax.experimental.jax2tf",
                 "tensorflow_decision_forests"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                sys.modules[name] = types.ModuleType(name)
    try:
        from tensorflowjs.converters import tf_saved_model_conversion_v2 as conversion
    except ImportError as e:
        raise MissingDependencyError(
            "The TF.js export needs the tensorflowjs converter, installed without its TF "
            "downgrade: pip install --no-deps tensorflowjs==4.22.0 tf-keras==2.21.0 "
            f"tensorflow-hub==0.16.1 (or pip install -e '.[tfjs]'); import failed: {e}") from None
    return conversion


def export_tfjs(trained, output: str, quantize: str = "float16") -> dict:
    """Write a TF.js graph model (OUTPUT/model.json + weight shards) and manipulations.json."""
    check_exportable(trained)
    if quantize not in TFJS_QUANTIZATIONS:
        raise ValueError(f"Unknown --quantize {quantize!r}; choose one of: "
                         f"{', '.join(TFJS_QUANTIZATIONS)}.")
    conversion = _import_tfjs_converter()
    _fresh_dir(output)
    module = PortableModule.of(trained)
    functions = module.functions(None)
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "saved_model")
        tf.saved_model.save(module, saved, signatures=functions)
        staging = os.path.join(tmp, "tfjs")
        conversion.convert_tf_saved_model(
            saved, staging, signature_def="serving_default", saved_model_tags="serve",
            quantization_dtype_map={"float16": "*"} if quantize == "float16" else None)
        for name in os.listdir(staging):
            shutil.move(os.path.join(staging, name), os.path.join(output, name))
    write_manifest(output, trained, trained.image_size, "tfjs", quantize=quantize,
                   model="model.json")
    return {"path": output, "bytes": directory_bytes(output), "quantize": quantize}


def run_tflite(path: str, image: np.ndarray, ms: np.ndarray,
               region_threshold: float = REGION_THRESHOLD, region_inside: bool = True,
               num_threads: int | None = None):
    """Run an exported .tflite with LiteRT (no TensorFlow needed): (image uint8, attention)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise MissingDependencyError("Running a TFLite export needs LiteRT (no TensorFlow "
                                     "needed): pip install ai-edge-litert") from None
    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    ms = np.asarray(ms, np.float32)
    if ms.ndim == 1:
        ms = ms[None]
    if ms.shape[0] == 1:
        out = interpreter.get_signature_runner("manipulate")(image=image, ms=ms)
    else:
        out = interpreter.get_signature_runner("manipulate_region")(
            image=image, ms=ms, region_threshold=np.float32(region_threshold),
            region_inside=np.float32(1.0 if region_inside else 0.0))
    return out["image"], out["attention"]
