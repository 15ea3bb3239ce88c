"""Compare: the record-level difference between a backup and the organization now, or between
two backups of the same organization.

A row is the same record on both sides when it has the same primary key (an in-place restore
keeps primary keys). Both sides are streamed in primary-key order and merged, so memory stays
flat in the number of rows: ``sides`` reads them (an archive, or the live rows limited to the
backup's scope), ``engine`` merges them into differences, ``services`` runs a comparison job and
keeps its result, ``alerts`` turns a backup's change summary into a mass-change notice.
"""
