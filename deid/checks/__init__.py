"""Checks before release: the in-process IOD check and the optional dciodvfy gate."""
