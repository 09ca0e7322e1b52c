"""The audit log, read: an auditor's search of who changed what, when and why."""
