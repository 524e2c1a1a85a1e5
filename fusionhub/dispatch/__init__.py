"""Dispatch: the system of record (users, teams, cameras, flags, cases, tasks) and the case workflow."""
