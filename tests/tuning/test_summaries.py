"""The search run's event files: what TensorBoard needs to read them in order."""

import tensorflow as tf

from tuner_prune.tuning import summaries


def test_a_search_process_writes_its_progress_into_one_event_file(tiny_search):
    """TensorBoard reads a run's files in name order, where a per-process
    counter sorts as text (``.10`` before ``.7``): one file per process keeps
    the steps in the order they were written."""
    run = tiny_search["logs"] / "tensorboard" / "search" / summaries.SEARCH_RUN
    files = sorted(run.glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    steps = [event.step for event in tf.compat.v1.train.summary_iterator(str(files[0]))
             if event.summary.value]
    assert steps == sorted(steps) and max(steps) == 3, steps


def test_progress_goes_to_the_open_file_until_the_search_is_cleared(tmp_path):
    root, baseline = tmp_path / "tensorboard", {
        "val_mse": 0.5, "weights": 9, "settings": {"alpha": 1.0}, "test_mse": None}
    run = root / summaries.SEARCH_RUN
    for _ in range(2):
        summaries.clear(str(root))
        summaries.write_baseline(str(root), baseline)
        summaries.write_baseline(str(root), baseline)
        files = list(run.glob("events.out.tfevents.*"))
        assert len(files) == 1, files
        assert sum(1 for event in tf.compat.v1.train.summary_iterator(str(files[0]))
                   if event.summary.value) == 4  # Two scalars and two texts.
