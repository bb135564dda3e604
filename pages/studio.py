import streamlit as st

st.title("Studio")
st.caption("Write a prompt, pick a provider and quality, see the cost, generate.")
