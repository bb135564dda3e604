"""Blind reviews: pairwise votes on a team's own images, and what they say about each candidate."""
