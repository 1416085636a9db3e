"""Export of trained encoders to compiled artifacts (ONNX, TensorRT engines) with their model cards."""
