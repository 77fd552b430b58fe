"""Experiments: measurements that compose models, accelerators and ``recsys_lab.eval``.

This layer sits on top (data <- models <- accel; eval; experiments, notebooks, benchmarks), so it
may import all of them and nothing below imports it. Submodules are imported by name, e.g.
``from recsys_lab.experiments.accelerators import accuracy_table``; nothing is loaded here, so
one experiment's dependencies never weigh on another's import.
"""
