"""Streamlit building blocks shared by the pages (no business logic, no HTTP)."""
