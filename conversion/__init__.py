"""Build-time conversion of official PaddleOCR recognition models into ppocr_torch checkpoints.

The only place PaddlePaddle / onnx / onnxruntime are imported (lazily, inside functions).
"""
