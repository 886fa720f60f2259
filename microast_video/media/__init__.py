"""Media in and out: probe, decode (PyAV), the encode plan and the encoder (the ffmpeg
program), image read and write, procedural test footage. May import ``colour``,
``native`` and ``core``.
"""
