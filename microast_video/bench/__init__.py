"""The bench: every arm measured the same way in fresh processes (ours, the upstream way,
ONNX Runtime, OpenVINO). May import ``jobs`` and below (never ``batch``).
"""
