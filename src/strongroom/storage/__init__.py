"""Encrypted, versioned team buckets."""
