"""Deterministic demo content for ``manage.py seed_demo``.

- ``catalog``: the fixed cast (master data, organizations, users of every DESIGN.md actor).
- ``text``: a seeded corpus of realistic compliance prose, titles and names.
- ``images`` and ``files``: real PDF, PNG, JPEG, DOCX, text, Markdown and CSV files generated
  locally and streamed to any writable binary file, padded to a requested size.
- ``seeder``: idempotent writes keyed by natural keys, bulk inserts for large tenants.
"""
