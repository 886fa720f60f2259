"""The small core every stage stands on: errors, the frame type, the atomic writer and the
file plan, paths, process settings, the threaded stage chain, and the option schema (every
option declared once). Imports nothing else of the package.
"""
