"""The search stage: hypermodel, oracle, tuner, trials."""
