"""What a run is asked to do, checked once, without TensorFlow.

``config`` holds every setting with its default and check (``SearchConfig``),
``plan`` resolves a config against its folders, data and stored search into a
``Plan``, ``stored_search`` keeps the settings a search stored and what a
resume may not change, ``state`` says whose state a ``--directory`` holds. The
stages above read these settings; uses ``data``, ``store``, ``space``, ``core``.
"""
