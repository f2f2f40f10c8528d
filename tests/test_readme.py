"""The README's Python example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_python_api_example_runs(tmp_path):
    readme = Path(REPO, "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env={"PYTHONPATH": REPO,
                                                          "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "final_sparsity" in result.stdout
    assert (tmp_path / "export" / "api_example" / "model.tflite").is_file()
    trials = list((tmp_path / "logs" / "api_example").glob("trial_*/trial.json"))
    assert len(trials) == 3
    assert '"units"' in trials[-1].read_text()
