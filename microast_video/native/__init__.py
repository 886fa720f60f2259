"""The native C++ kernels: ``build`` compiles and loads them (every binding declared once),
then one module per consumer: ``colour`` (decode and encode), ``temporal`` (the temporal
stage), ``model`` (the network's strips). May import ``core`` and ``models``.
"""
