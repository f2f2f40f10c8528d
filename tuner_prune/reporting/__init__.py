"""What a finished search says, and the article's experiment.

``report`` lists the trials, their sizes and the Pareto front from the records
(without TensorFlow); ``sweep`` trains the base model over final sparsities as
the article does. Beside ``search`` (the search job), under ``cli``; uses the
stages below.
"""
