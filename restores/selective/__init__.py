"""Selective restore (merge): bring back picked records of a backup into the live organization.

A picked record comes with the records it needs (a matter its client, when the client is gone)
and, when asked, its dependants (a client with its matters, invoices, time entries, payments; a
document with its versions). Records gone since the backup are re-created with their original
key when it is free, else with a new one and the references to them remapped (the same
contract as the in-place restore, whose writer this reuses); records that still exist are left
alone unless "overwrite changed records" is chosen. Nothing that was not picked is changed or
deleted. Conflicts are found by ``plan.plan_selective`` before anything is written.
"""
