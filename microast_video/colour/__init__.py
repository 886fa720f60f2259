"""The one colour vocabulary (YCbCr matrices, levels, luma weights, tags), colour conversions
on tensors, and HDR tone mapping. May import ``core``.
"""
