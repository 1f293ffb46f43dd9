"""Frozen types and pure logic: no I/O (no files, git, network or terminal)."""
