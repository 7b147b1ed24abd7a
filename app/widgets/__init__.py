"""Widgets of the main window and its dialogs; each binds to data and calls the core, no logic."""
