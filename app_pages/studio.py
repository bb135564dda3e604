"""Studio: write a prompt, add images, pick the settings, see the price, generate and follow the jobs."""

import streamlit as st

from ui import sidebar, studio_form

sidebar.ensure()

st.title("Studio", help="Write a prompt, pick the quality and shape, see what it costs on every provider, "
         "then generate: the result appears beside the form.")
studio_form.render()
