"""The job runner and the life of one job, from submission to the stored image.
"""
