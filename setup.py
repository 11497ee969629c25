"""amgan_tf: Attribute Manipulation GAN (AMGAN, ICCV 2019) for fashion images in TensorFlow 2 / Keras 3.

TensorFlow itself comes from an extra so that a CPU machine never pulls CUDA wheels:
    pip install -e ".[cpu]"      # tensorflow-cpu
    pip install -e ".[gpu]"      # tensorflow[and-cuda]
See BUILD_NOTES.md for every install variant.
"""

from setuptools import find_packages, setup

TF = "2.21.0"

setup(
    name="amgan_tf",
    version="0.1.0",
    description="AMGAN fashion attribute manipulation in TensorFlow 2 / Keras 3",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.14",
    # Only the library is installed: export/ and serving/ are tools run from the checkout, and
    # installing generic top-level names like `export` would shadow other packages.
    packages=find_packages(include=["amgan_tf", "amgan_tf.*"]),
    package_data={"amgan_tf": ["data/readers/names/*.json"]},
    install_requires=[
        "keras==3.15.1",
        "tensorflow-datasets==4.9.10",
        "importlib_resources==7.1.0",  # tensorflow-datasets imports it without declaring it
        "numpy==2.4.6",
        "pillow==13.0.0",
        "absl-py==2.5.1",
        "h5py==3.14.0",
        "scipy==1.17.1",
        "tensorboard==2.21.0",  # tf.summary needs it; tensorflow 2.21 no longer depends on it
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TF}"],
        "gpu": [f"tensorflow[and-cuda]=={TF}"],
        # tensorflow-serving-api requires the full `tensorflow` wheel: this extra works on a fresh
        # machine WITHOUT the cpu extra (pip install -e ".[serving]"). With tensorflow-cpu, install
        # it alone: pip install --no-deps tensorflow-serving-api==2.21.0 (BUILD_NOTES.md).
        "serving": ["tensorflow-serving-api==2.21.0"],
        "tflite": ["ai-edge-litert==2.3.0"],
        # tensorflowjs==4.22.0 itself must be installed with --no-deps (it pins TF 2.19).
        "tfjs": ["tf-keras==2.21.0", "tensorflow-hub==0.16.1"],
        # The tests also check the TFLite and TF.js exports and drive the demo page in Chromium.
        "test": ["pytest==9.2.0", "ai-edge-litert==2.3.0", "playwright==1.65.2",
                 "tf-keras==2.21.0", "tensorflow-hub==0.16.1"],
    },
    entry_points={"console_scripts": [
        "amgan-train=amgan_tf.train:run",
        "amgan-train-classifier=amgan_tf.train_classifier:run",
        "amgan-manipulate=amgan_tf.manipulate:run",
        "amgan-render-samples=amgan_tf.render_samples:run",
        "amgan-export=amgan_tf.export_cli:run",
        "amgan-serve=amgan_tf.serving.server_cli:run",
        "amgan-client=amgan_tf.serving.client_cli:run",
    ]},
)
