"""Training: Avalanche template for (x, y, modality_mask, task) segmentation batches, shared bases, plugins."""
