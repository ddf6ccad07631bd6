"""Synthetic, deterministic sample AoI inside the authors' Liège AoI."""
