"""Stability over time: the stabilizer (flow, warp, blend; reset at cuts), its fallback
passes, and the flicker metric. May import ``engine`` and below.
"""
