"""Frames through the network in batches on the device: the stylizer and frame engine, the
CUDA runner, device and precision, the host-device transport, ONNX export. May import
``style`` and below.
"""
