"""recsys_lab: a notebook workbench for real-time recommendation inference acceleration."""
__version__ = "0.1.0"
