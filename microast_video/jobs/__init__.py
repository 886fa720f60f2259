"""The jobs the commands run, each a file of numbered phases: the video job's plan (every
check before any work) and its chain of stages, the image and preview jobs, the shared
options, report and chart. May import ``temporal`` and below.
"""
