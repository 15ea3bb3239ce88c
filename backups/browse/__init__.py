"""Browsing a backup without downloading it: its content per data set and model, its records by
human title with search and pagination, one record with its related records, and a document
version's file streamed out of the archive.

Everything streams the archive's members (``data/<dataset>/<model>.jsonl``) through
``ArchiveReader.open``; nothing holds a member whole. A page scans its member once and keeps at
most one page of rows (``reading.page``), so memory stays flat whatever the member's size; the
cost is one pass of the member per page view (measured in benchmarks/RESULTS.md).
"""
