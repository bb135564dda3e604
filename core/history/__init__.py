"""What the pages read and edit: runs, jobs, images, files, and the explanation of a failure.
"""
