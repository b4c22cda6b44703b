"""Audit: records of what was done to every object, reports a person reads, verification of an output."""
