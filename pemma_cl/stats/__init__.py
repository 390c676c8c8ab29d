"""Statistics with no knowledge of runs, files or the command line: intervals over seeds, case resampling, the
concordance index, and the group-sequential plan (bounds, the paired t, the stopping rule)."""
