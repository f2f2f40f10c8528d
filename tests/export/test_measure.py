"""Measuring a trained pruned model: one MSE, and a package without import cycles."""

import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, cli_env
from tuner_prune.core.metrics import in_target_units, mse

PACKAGE = "tuner_prune"


def package_modules():
    """``{module name: source path}`` of every module of the package."""
    modules = {}
    for root, _, names in os.walk(os.path.join(REPO, PACKAGE)):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                modules[dotted.removesuffix(".__init__")] = path
    return modules


def imported_modules(path, modules):
    """Package modules that ``path`` imports, at module level or inside functions."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):  # Relative, from a module of the package.
            base = PACKAGE + (f".{node.module}" if node.module else "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def import_cycle(graph):
    """One cycle of ``graph`` (``{node: successors}``) as a list of nodes, or ``None``."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return stack[stack.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    modules = package_modules()
    graph = {name: imported_modules(path, modules) - {name}
             for name, path in modules.items()}
    cycle = import_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_import_cycle_finds_a_cycle_through_a_function_level_import(tmp_path):
    (tmp_path / "a.py").write_text(f"from {PACKAGE} import b\n")
    (tmp_path / "b.py").write_text(f"def f():\n    from {PACKAGE}.a import g\n")
    modules = {f"{PACKAGE}.a": str(tmp_path / "a.py"), f"{PACKAGE}.b": str(tmp_path / "b.py")}
    graph = {name: imported_modules(path, modules) for name, path in modules.items()}
    assert import_cycle(graph) == [f"{PACKAGE}.a", f"{PACKAGE}.b", f"{PACKAGE}.a"]


@pytest.mark.parametrize("prediction, target", [
    ([1.0, 2.0, 4.0], [1.0, 0.0, 1.0]),
    ([[1.0], [2.0], [4.0]], [1.0, 0.0, 1.0]),
    ([1.0, 2.0, 4.0], [[1.0], [0.0], [1.0]]),
    ([[1.0], [2.0], [4.0]], [[1.0], [0.0], [1.0]]),
])
def test_mse_pairs_rows_whatever_the_shapes(prediction, target):
    expected = (0.0 ** 2 + 2.0 ** 2 + 3.0 ** 2) / 3
    value = mse(np.asarray(prediction, np.float32), np.asarray(target))
    assert value == pytest.approx(expected) and isinstance(value, float)


def test_mse_in_target_units():
    prediction, target = np.array([0.5, 1.0]), np.array([0.0, 0.0])
    assert mse(prediction, target, target_scale=4.0) == pytest.approx(
        (0.25 + 1.0) / 2 * 16.0)
    assert in_target_units(0.625, 4.0) == pytest.approx(10.0)
    assert mse(prediction, target) == in_target_units(mse(prediction, target), 1.0)


def test_mse_module_imports_no_tensorflow():
    check = "import sys, tuner_prune.core.metrics; assert 'tensorflow' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True,
                            text=True, env=cli_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_measure_reports_a_pruned_model_in_target_units():
    from tuner_prune.export import measure
    from tuner_prune.core._keras import keras, sparsity

    model = sparsity.prune_low_magnitude(keras.Sequential([
        keras.Input(shape=(4,)), keras.layers.Dense(1, use_bias=False, name="out")]))
    model.build((None, 4))
    wrapper = model.layers[0]
    wrapper.layer.kernel.assign(np.array([[0.0], [2.0], [0.0], [-1.0]], np.float32))
    figures = measure.measure_sparsity(model)
    assert figures["sparsity"] == 0.5 and figures["nonzero_weights"] == 2
    assert figures["layers"] == [{"name": "out", "sparsity": 0.5}]
    x = np.eye(4, dtype=np.float32)
    y = np.zeros(4, np.float32)
    assert measure.model_mse(model, x, y, target_scale=3.0) == pytest.approx(
        (4.0 + 1.0) / 4 * 9.0)


def test_macs_count_each_kernel_weight_once_per_output_position():
    from tuner_prune.export import measure
    from tuner_prune.core._keras import keras, sparsity

    # A Conv1D of kernel 3 x 2 x 4 over 10 steps (8 output positions), a
    # weightless ReLU and Flatten, then Dense(1) of 32 inputs.
    model = sparsity.prune_low_magnitude(keras.Sequential([
        keras.Input(shape=(10, 2)), keras.layers.Conv1D(4, 3), keras.layers.ReLU(),
        keras.layers.Flatten(), keras.layers.Dense(1)]))
    conv, dense = model.layers[0].layer, model.layers[3].layer
    conv.kernel.assign(np.where(np.arange(24).reshape(3, 2, 4) < 6, 1.0, 0.0))  # 6 kept.
    dense.kernel.assign(np.where(np.arange(32).reshape(32, 1) < 5, 1.0, 0.0))  # 5 kept.
    assert measure.count_macs(model) == {"macs": 8 * 6 + 5, "dense_macs": 8 * 24 + 32}
    lstm = sparsity.prune_low_magnitude(keras.Sequential([
        keras.Input(shape=(3, 2)), keras.layers.LSTM(2), keras.layers.Dense(1)]))
    assert measure.count_macs(lstm) == {"macs": None, "dense_macs": None}
