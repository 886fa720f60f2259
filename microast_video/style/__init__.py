"""Style signals: the official weights, the pretrained network, signals computed once (and
saved), keyframes and mattes that vary them over time and space. May import ``media`` and
below.
"""
