"""Exact money, the budget ledger and what a batch costs.
"""
