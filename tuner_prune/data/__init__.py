"""The data stage: tables read, encoded, split and scaled; the ridge baseline.

``dataset`` loads and splits the CLI's data and fits the scaling, ``table``
reads a CSV as it comes, ``encoding`` turns its columns into numbers,
``frames`` reads the API's DataFrames, ``splits`` checks the API's arrays and
``baseline`` fits the ridge regression every search stands beside. Keras-free;
uses ``store`` (the baseline's file) and ``core``.
"""
