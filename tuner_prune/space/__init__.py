"""What a search varies: the pruning schedule, its bounds, the model builders."""
