"""Baseline of "first paint -> prompt box enabled": a bare Streamlit page, served as the app is."""

import streamlit as st

st.write("hello")
st.text_area("Prompt")
