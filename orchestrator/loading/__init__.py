"""Loaders: gold into the warehouse (DuckDB here, Synapse in Azure), silver into the operational DB."""
