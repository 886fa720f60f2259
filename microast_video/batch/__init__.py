"""Many shots x looks from a manifest: the manifest, segments and records, the chained run,
local workers and Ray, the report. May import ``jobs`` and below (never ``bench``).
"""
