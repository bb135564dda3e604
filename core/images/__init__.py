"""Images on their way in: preparation before any paid call, recipes, masks.
"""
