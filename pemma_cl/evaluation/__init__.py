"""Segmentation scores (Dice) and continual-learning metrics computed from them."""
