"""Restore models arrive with the restore issue."""
