"""The report and the sweep."""
