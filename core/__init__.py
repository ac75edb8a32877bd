"""Convexity Lab core: everything the dashboard and the CLI do, importable without Streamlit."""
