"""Shared helpers without models."""
