"""The organization-creation wizard (Site Admins): company, address, contact, structure,
regulations, modules, review. The restores app runs the same steps after a *Backup selection*
step (``restores.wizard``); this package knows nothing of backups."""
