"""PyInstaller hook: every ``spinect_core`` module, including the CLI subcommands.

``spinect_core.cli.build_parser`` imports each subcommand with ``importlib.import_module`` by
name (see ``spinect_core.cli.COMMANDS``), which the module graph cannot follow. The spec lists
them explicitly as well; this hook is the safety net for modules added later. The training code
is collected too (``spinect train`` is in the CLI), but not the tests.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

hiddenimports = collect_submodules("spinect_core")
# py.typed and any future package data; assets/ (if it moves into the package) is copied to
# assets/ by the spec, where asset_path looks when frozen, so it is not collected twice here.
datas = collect_data_files("spinect_core", excludes=["assets", "assets/**"])
try:
    datas += copy_metadata("spinect")  # importlib.metadata.version("spinect") when installed
except Exception:
    pass
