"""The examples in the README and in the public docstrings run and say what they show."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import marketmaker
import marketmaker.credentials
import marketmaker.state
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

PUBLIC = [getattr(marketmaker, name) for name in marketmaker.__all__ if name != "__version__"]


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda obj: getattr(obj, "__name__", repr(obj)))
def test_docstring_examples_run(obj: object) -> None:
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs = {name: getattr(marketmaker, name) for name in marketmaker.__all__}
    for test in finder.find(obj, getattr(obj, "__name__", "obj"), globs=globs):
        runner.run(test)
    assert runner.failures == 0
    if ">>>" in (getattr(obj, "__doc__", None) or ""):
        assert runner.tries > 0, "the docstring's examples were found and run"


def test_the_classes_with_examples_have_them() -> None:
    for obj in (marketmaker.OrderBook, marketmaker.TradeTape, marketmaker.Account, marketmaker.SharedState):
        assert ">>>" in (obj.__doc__ or ""), obj


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    namespace: dict[str, object] = {}  # the blocks are one continuing example
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert "OrderBook(" in capsys.readouterr().out
