"""The built-in synthetic cohort: phantom patients, the cohort, its export as a HECKTOR folder."""
