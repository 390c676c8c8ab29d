"""Measurements of cost: per-strategy step and evaluation profiles."""
