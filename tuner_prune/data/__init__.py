"""The data stage: tables read, encoded, split and scaled; the ridge baseline."""
