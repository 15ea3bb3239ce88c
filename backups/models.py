"""Backup models arrive with the backup engine (issue 3)."""
