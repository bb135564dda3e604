"""Comparisons and experiment grids.
"""
