"""Data sources: the built-in synthetic HECKTOR-like cohort and the official HECKTOR 2022 folder (prepared into a cache)."""
