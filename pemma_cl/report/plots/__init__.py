"""Figures of a run: Dice along the stream, R matrices, cost, Kaplan-Meier, label placement."""
