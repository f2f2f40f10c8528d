"""The export stage: serving model, TFLite variants, TFLM, C."""
