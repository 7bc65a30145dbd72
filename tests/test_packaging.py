"""The wheel carries the whole tree: built from this checkout, installed into a fresh venv, every module imports
from the installed copy, the templates and migrations are there, and ``leadrelay --help`` runs."""

from __future__ import annotations

import pkgutil
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "leads", "sdr_console", "storage")

CHECK = """
import importlib, json, pathlib, sys
names = json.loads(sys.argv[1])
for name in names:
    module = importlib.import_module(name)
    assert pathlib.Path(module.__file__).is_relative_to(pathlib.Path(sys.argv[2])), (name, module.__file__)
import bot.capture, storage
root = pathlib.Path(bot.capture.__file__).parent
assert (root / "templates" / "form.html").is_file(), "templates missing from the wheel"
assert (pathlib.Path(storage.__file__).parent / "migrations" / "script.py.mako").is_file(), "alembic template missing"
print(len(names))
"""


def source_modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations.versions." in info.name or info.name.endswith(".migrations.env"):
                continue  # Alembic loads these itself, inside a migration context
            names.append(info.name)
    return names


def test_the_wheel_installs_every_module_and_the_cli(tmp_path: Path) -> None:
    import json

    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "*.db*"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(source)], check=True, cwd=tmp_path)
    [wheel] = wheels.glob("leadrelay-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from this test run's environment (appended after the venv's own site-packages,
    # so the freshly installed copy of LeadRelay is the one imported); LeadRelay itself only from the wheel.
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, cwd=tmp_path)
    names = source_modules()
    result = subprocess.run([str(python), "-I", "-c", CHECK, json.dumps(names), str(target)], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip()) == len(names) > 60
    cli = subprocess.run([str(env_dir / "bin" / "leadrelay"), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert cli.returncode == 0 and "serve" in cli.stdout, cli.stderr[-2000:]
