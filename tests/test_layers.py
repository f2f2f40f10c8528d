"""The stages import one way, down: import-linter's contract in pyproject.toml.

``lint-imports`` runs as a real process, on this checkout and on copies of it
given a back edge or a module in no stage, which it must refuse.
"""

import os
import shutil
import subprocess
import sys

from conftest import REPO, cli_env

LINT = "import sys; from importlinter.cli import lint_imports_command; " \
       "sys.exit(lint_imports_command())"


def lint_imports(root):
    """``lint-imports`` run in ``root``, on the ``tuner_prune`` found there."""
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env=cli_env({"PYTHONPATH": str(root)}))


def copy_of_checkout(tmp_path):
    """The package and pyproject.toml of this checkout, copied into ``tmp_path``."""
    shutil.copytree(os.path.join(REPO, "tuner_prune"), tmp_path / "tuner_prune",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "pyproject.toml"), tmp_path)
    return tmp_path


def test_the_stages_import_one_way_down():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stages import one way, down KEPT" in result.stdout


def test_a_back_edge_breaks_the_contract(tmp_path):
    """``core`` importing the search stage, even inside a function, is refused."""
    root = copy_of_checkout(tmp_path)
    with open(root / "tuner_prune" / "core" / "errors.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef back_edge():\n    from tuner_prune.tuning import tuner\n")
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Stages import one way, down BROKEN" in result.stdout
    assert "tuner_prune.core.errors -> tuner_prune.tuning.tuner" in result.stdout


def test_a_module_in_no_stage_breaks_the_contract(tmp_path):
    root = copy_of_checkout(tmp_path)
    (root / "tuner_prune" / "stray.py").write_text('"""In no layer of the contract."""\n')
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tuner_prune.stray" in result.stdout
