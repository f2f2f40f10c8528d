"""Flags to a checked plan: the config, the stored search."""
