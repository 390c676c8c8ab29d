"""pemma-cl: continual-learning benchmark suite for multi-modal head-and-neck tumour segmentation."""

__version__ = "0.1.0"
