"""The workbench engine: generation, storage, quality, cleaning and loading. Knows nothing of Streamlit."""

__version__ = "0.1.0"
