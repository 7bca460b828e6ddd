"""The workbench frame. A placeholder home page until the workbench UI lands."""

import streamlit as st

st.set_page_config(page_title="Data workbench", layout="wide")
st.title("Data workbench")
st.write("Generate deliberately dirty e-commerce data from the command line: `python -m orchestrator generate --help`.")
