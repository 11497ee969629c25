"""Dataset readers: local files (never downloaded) -> RawExamples in AttributeSchema label order."""

from amgan_tf.data.readers.base import DataFilesError, LabelFormatError, RawExample, Reader
from amgan_tf.data.readers.deepfashion_attributes import DeepFashionAttributesReader
from amgan_tf.data.readers.deepfashion_synthesis import DeepFashionSynthesisReader
from amgan_tf.data.readers.image_folder import CLOTHING_SMALL_SLEEVE, ImageFolderReader
from amgan_tf.data.readers.shopping100k import Shopping100kReader

__all__ = [
    "CLOTHING_SMALL_SLEEVE",
    "DataFilesError",
    "DeepFashionAttributesReader",
    "DeepFashionSynthesisReader",
    "ImageFolderReader",
    "LabelFormatError",
    "RawExample",
    "Reader",
    "Shopping100kReader",
]
