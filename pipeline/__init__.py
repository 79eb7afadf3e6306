"""A reproducible DCGAN pipeline on MNIST: download, train, export to ONNX, sample, benchmark."""

__version__ = "0.1.0"
