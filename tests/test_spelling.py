"""One spelling: "fibre" (British, as most public names: ``fibre_potentials``, ``FibreClass``,
``fibre_classes.toml``, ``physics.fibres``) in identifiers, messages, CLI help and docs.

The only places "fiber" may appear are the listed exceptions: the public ``fibers``
command and its ``--fibers`` option (kept: scripts use them), the module and benchmark
named after that command, and a third-party package name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import electrostim
from electrostim.cli import app

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(electrostim.__file__).resolve().parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

#: the only allowed uses of the other spelling, and why
EXCEPTIONS = {
    r"\bpyfibers\w*": "a third-party package (the NEURON peer) and the script that drives it, by its name",
    r"\belectrostim fibers\b": "the public command",
    r"(?<![\w-])fibers (?:threshold|sd|cv|recruitment|window)\b": "a subcommand of the public command",
    r"`fibers\b[^`\n]*`": "the public command in a code span",
    r'name="fibers"': "where the public command is registered",
    r"│\s*fibers\s": "the public command in the command list of --help",
    r"--fibers\b": "the public option of `fibers recruitment` and `fibers window`",
    r"\b_fibers\b": "cli/_fibers.py, the module of the public command",
    r"\bfibers_threshold\b": "benchmarks/fibers_threshold.py, the benchmark of `fibers threshold`",
}
_ALLOWED = re.compile("|".join(f"(?:{p})" for p in EXCEPTIONS))
_OTHER = re.compile(r"fiber", re.IGNORECASE)


def _offending_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if _OTHER.search(_ALLOWED.sub("", line))]


def _help_texts() -> dict[str, str]:
    runner = CliRunner()
    texts = {}

    def walk(command, path):
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        texts[" ".join(["electrostim", *path])] = r.output
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return texts


def test_the_checker_finds_the_other_spelling():
    assert _offending_lines("the fiber model") == ["the fiber model"]
    assert _offending_lines("FIBER_MODELS = {}") == ["FIBER_MODELS = {}"]
    assert _offending_lines("electrostim fibers recruitment --fibers 12") == []
    assert _offending_lines("from electrostim.physics.fibers import x") == ["from electrostim.physics.fibers import x"]


@pytest.mark.parametrize("path", sorted(p for p in SRC.rglob("*") if p.is_file() and p.suffix in {".py", ".toml", ".md", ".ini", ".mako"}
                                        and "__pycache__" not in p.parts), ids=lambda p: str(p.relative_to(SRC)))
def test_package_source_says_fibre(path: Path):
    assert _offending_lines(path.read_text(encoding="utf-8")) == []


def test_module_and_data_file_names_say_fibre():
    names = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*") if "__pycache__" not in p.parts]
    assert [n for n in names if _OTHER.search(_ALLOWED.sub("", n))] == []
    assert (SRC / "physics" / "fibres" / "__init__.py").is_file() and (SRC / "physics" / "fibre_models.toml").is_file()


def test_cli_help_says_fibre():
    texts = _help_texts()
    assert "electrostim fibers recruitment" in texts  # the walk reached the fibre commands
    bad = {cmd: lines for cmd, text in texts.items() if (lines := _offending_lines(text))}
    assert bad == {}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_say_fibre(path: Path):
    assert _offending_lines(path.read_text(encoding="utf-8")) == []
