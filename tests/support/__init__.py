"""Helpers for tests that run real peers: Celery worker processes, an S3 server, 7-Zip."""
