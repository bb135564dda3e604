"""Prompt templates and the Studio form as data (the batch a prompt makes).
"""
