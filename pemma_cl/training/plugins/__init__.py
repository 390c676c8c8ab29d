"""Avalanche plugins the strategies are made of: adapters, importance, distillation, rehearsal, offline."""
