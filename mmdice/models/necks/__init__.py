"""Necks of mmdice (DiCENet uses the codebases' own necks)."""
__all__ = []
