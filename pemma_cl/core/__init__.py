"""Leaves of the suite: errors, task kinds, precision, evaluation-protocol labels (import nothing of it)."""
