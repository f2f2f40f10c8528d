"""What a search varies: the pruning schedule, its bounds, the model builders.

Keras-free arithmetic and checks (``models`` imports tf_keras on first use):
``schedule`` (tfmot's polynomial decay, every schedule reaching its final
sparsity), ``bounds`` (the ``ScheduleSpace`` resolved against the training
length), ``training`` (batch size and epochs from the rows), ``models`` (the
built-in model, ``--model`` builders) and ``overrides`` (``--hp``). Uses
``core`` only.
"""
