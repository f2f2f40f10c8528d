"""The export stage: a trained model shipped as SavedModel, TFLite, TFLM and C.

``exporter`` writes the export (``export_model``), ``serving`` and ``padding``
build the serving model, ``raw_input`` its front end for raw CSV cells,
``tflite`` converts and runs each variant in LiteRT, ``runtimes`` and ``tflm``
run them on the built-in kernels and in TensorFlow Lite Micro, ``choice`` picks
one, ``micro`` writes the C++ array, ``c_export`` (with ``c_source`` and
``c_build``) the C99 model; ``measure`` measures a model, for a trial too.
Uses ``settings``, ``data``, ``store`` and ``core``.
"""
