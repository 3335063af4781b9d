"""Encrypted, consistent snapshots of a platform, and bringing a platform back from one."""
