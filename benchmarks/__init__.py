"""The named streams (one YAML file each) and the benchmark scripts; installed as ``pemma_cl.benchmarks``."""
