"""The README's promises that a test can hold: its newcomer commands are the ones CI runs,
and the images and files it shows exist."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_first_lines_are_two_commands_ci_runs_as_written():
    commands = _first_commands()
    assert len(commands) == 2
    assert "tinyllm train" in commands[0] and "pytest" in commands[1]
    assert README.index("```bash") < README.index("## Install")       # before anything else
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in commands:
        assert any(line == command or line.startswith(command + " ||") for line in ci_lines), \
            f"CI does not run the README's command {command!r} as written"


def test_images_exist():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(images) >= 2
    for image in images:
        assert (ROOT / image).is_file(), f"README shows {image}, which is not in the repository"


def test_figure_script_redraws_the_readme_images(tmp_path):
    pytest.importorskip("matplotlib")
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_figures.py"), "--out",
                    str(tmp_path)], check=True, capture_output=True)
    for name in ("scaling.png", "training_curve.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"docs/images/{name}" in README
