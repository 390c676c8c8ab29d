"""Data sources: the built-in synthetic HECKTOR-like cohort and (later) the real HECKTOR 2022 folder."""
