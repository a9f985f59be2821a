"""Prefect flows: orchestration of the rhetoric package."""
