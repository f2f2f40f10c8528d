"""The files of a search and an export on disk."""
