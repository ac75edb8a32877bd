"""Pieces the page scripts share: cached core calls, figures, session state, messages and views."""
