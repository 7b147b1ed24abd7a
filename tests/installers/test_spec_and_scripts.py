"""Fast checks of the installer files: the spec, hooks, build scripts, desktop entry, Inno Setup.

No PyInstaller and no build: these run in the default test run. The real build and smoke test are
in ``test_smoke_build.py`` (marked slow).
"""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALLERS = REPO / "installers"
SPEC = INSTALLERS / "spinect.spec"
SHELL_SCRIPTS = ["build.sh", "wheelhouse.sh", "linux/make_tarball.sh", "linux/install.sh"]


def _spec_constants() -> dict:
    """Top-level ``NAME = <literal>`` assignments of the spec (the spec itself needs PyInstaller)."""
    tree = ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def test_spec_and_hooks_compile():
    for path in [SPEC, INSTALLERS / "spinect_entry.py", INSTALLERS / "check_screenshot.py",
                 *sorted((INSTALLERS / "hooks").glob("*.py"))]:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_spec_builds_two_executables_and_copies_assets():
    text = SPEC.read_text(encoding="utf-8")
    assert 'name="spinect-app", console=False' in text
    assert 'name="spinect", console=True' in text
    assert '"assets")' in text  # assets/ -> assets/ in the bundle, where asset_path looks
    assert "COLLECT(" in text  # one-folder bundle, not one-file


def test_hiddenimports_cover_every_cli_command():
    from spinect_core.cli import COMMANDS

    listed = set(_spec_constants()["CLI_MODULES"])
    missing = [name for name in COMMANDS if f"spinect_core.cli.{name}" not in listed]
    assert not missing, f"add to CLI_MODULES in installers/spinect.spec: {missing}"
    on_disk = {f"spinect_core.cli.{p.stem}" for p in (REPO / "spinect_core" / "cli").glob("*.py")
               if p.stem != "__init__" and not p.stem.startswith("_")}
    assert on_disk <= listed, f"CLI modules not in the spec: {sorted(on_disk - listed)}"


def test_every_path_the_spec_references_exists():
    constants = _spec_constants()
    for key in ("ENTRY_SCRIPT", "HOOKS_DIR", "ASSETS_DIR", "FALLBACK_ICON_DIR"):
        assert (REPO / constants[key]).exists(), f"{key} = {constants[key]} does not exist"
    assert (REPO / constants["FALLBACK_ICON_DIR"] / "spinect.png").is_file()
    assert (REPO / constants["FALLBACK_ICON_DIR"] / "spinect.ico").is_file()
    hooks = {p.name for p in (REPO / constants["HOOKS_DIR"]).glob("hook-*.py")}
    assert {"hook-pylibjpeg.py", "hook-jpeg_ls.py", "hook-SimpleITK.py", "hook-spinect_core.py",
            "hook-vtkmodules.py"} <= hooks


def test_lazy_hiddenimports_are_importable_here():
    """Every module the spec names must exist in the dev environment (a typo breaks the build)."""
    import importlib.util

    constants = _spec_constants()
    for name in (*constants["CLI_MODULES"], *constants["LAZY_MODULES"]):
        top = name.split(".")[0]
        if top in ("app", "pyvistaqt", "pyvista") and importlib.util.find_spec("PySide6") is None:
            continue
        if importlib.util.find_spec(top) is None:
            pytest.skip(f"{top} is not installed here")
        assert importlib.util.find_spec(name) is not None, f"{name} cannot be found"


def test_entry_script_dispatches_on_the_executable_name(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("spinect_entry", INSTALLERS / "spinect_entry.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    assert entry._is_cli("/opt/spinect/spinect")
    assert entry._is_cli(r"C:\Users\me\SPINECT\spinect.exe")
    assert not entry._is_cli("/opt/spinect/spinect-app")
    assert not entry._is_cli(r"C:\SPINECT\spinect-app.exe")
    monkeypatch.setenv("SPINECT_LOG_DIR", str(tmp_path / "logs"))
    assert entry.user_log_dir() == tmp_path / "logs" and (tmp_path / "logs").is_dir()


def test_bundle_selftest_passes_unfrozen():
    """The checks ``spinect --bundle-selftest`` runs inside the bundle pass in this environment."""
    import sys

    pytest.importorskip("SimpleITK")
    pytest.importorskip("vtkmodules")
    pytest.importorskip("pylibjpeg")
    result = subprocess.run([sys.executable, str(INSTALLERS / "spinect_entry.py"),
                             "--bundle-selftest"], capture_output=True, text=True, timeout=300,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_scripts_parse(script):
    path = INSTALLERS / script
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash")


def test_powershell_script_parses_if_pwsh_is_present():
    text = (INSTALLERS / "build.ps1").read_text(encoding="utf-8")
    assert "torch==2.13.0" in text and "PyInstaller" in text
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("no PowerShell here")
    cmd = ("$e=$null; [System.Management.Automation.Language.Parser]::ParseFile("
           f"'{INSTALLERS / 'build.ps1'}', [ref]$null, [ref]$e) | Out-Null; "
           "if ($e.Count) { $e; exit 1 }")
    result = subprocess.run([pwsh, "-NoProfile", "-Command", cmd], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_scripts_pin_cpu_torch():
    for name in ("build.sh", "build.ps1", "wheelhouse.sh"):
        assert "torch==2.13.0" in (INSTALLERS / name).read_text(encoding="utf-8"), name


def test_desktop_entry_has_the_required_keys():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(INSTALLERS / "linux" / "spinect.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    for key in ("Type", "Name", "Exec", "Icon", "Terminal", "Categories", "Comment"):
        assert entry.get(key), f"missing {key}"
    assert entry["Type"] == "Application"
    assert entry["Terminal"] == "false"
    assert entry["Exec"].startswith("@BUNDLE_DIR@/spinect-app")
    assert entry["Categories"].endswith(";")
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run([validator, str(INSTALLERS / "linux" / "spinect.desktop")],
                                capture_output=True, text=True)
        assert result.returncode == 0 and "error" not in result.stdout.lower(), result.stdout


def test_inno_setup_script_is_per_user():
    text = (INSTALLERS / "windows" / "spinect.iss").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    assert "PrivilegesRequired=lowest" in lines
    assert any(line.startswith("DefaultDirName={localappdata}") for line in lines)
    assert any(line.startswith('Name: "{autoprograms}') for line in lines)  # start-menu entry
    assert "[Setup]" in lines and "[Files]" in lines and "[Icons]" in lines
    assert (INSTALLERS / "windows" / "../icons/spinect.ico").resolve().is_file()


def test_tarball_installs_per_user(tmp_path):
    """make_tarball.sh on a fake bundle, then install.sh / --uninstall into a fake home."""
    bundle = tmp_path / "dist" / "spinect"
    bundle.mkdir(parents=True)
    for exe in ("spinect", "spinect-app"):
        (bundle / exe).write_text(f"#!/bin/sh\necho {exe} 9.8.7\n")
        (bundle / exe).chmod(0o755)
    out = tmp_path / "out"
    subprocess.run(["bash", str(INSTALLERS / "linux" / "make_tarball.sh"), str(bundle), str(out)],
                   check=True, capture_output=True, text=True)
    tarballs = list(out.glob("spinect-9.8.7-linux-*.tar.gz"))
    assert len(tarballs) == 1
    subprocess.run(["tar", "-xzf", str(tarballs[0]), "-C", str(tmp_path)], check=True)
    unpacked = next(tmp_path.glob("spinect-9.8.7-linux-*"))
    home = tmp_path / "home"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SPINECT_ALLOW_ROOT": "1"}
    subprocess.run(["bash", str(unpacked / "install.sh")], check=True, env=env,
                   capture_output=True, text=True)
    dest = home / ".local" / "opt" / "spinect"
    assert (dest / "spinect-app").is_file()
    desktop = (home / ".local" / "share" / "applications" / "spinect.desktop").read_text()
    assert f"Exec={dest}/spinect-app %f" in desktop and "@BUNDLE_DIR@" not in desktop
    assert (home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps"
            / "spinect.png").is_file()
    assert (home / ".local" / "bin" / "spinect").is_symlink()
    subprocess.run(["bash", str(unpacked / "install.sh"), "--uninstall"], check=True, env=env,
                   capture_output=True, text=True)
    assert not dest.exists()
    assert not (home / ".local" / "share" / "applications" / "spinect.desktop").exists()
