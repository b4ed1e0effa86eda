"""Importers of other frameworks\x27 results into run stores."""
