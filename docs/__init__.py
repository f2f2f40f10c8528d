"""Examples that run from the repository's root (``--model docs.digits_conv:build``)."""
