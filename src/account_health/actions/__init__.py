"""Actions: the playbook per tier and its cross-cuts, turned into account actions and CSM tasks."""
