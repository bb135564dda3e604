"""What leaves the app: downloads, ZIPs and CSVs, reports, contact sheets, copy-as-code.
"""
