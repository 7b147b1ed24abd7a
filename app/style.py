"""The application's look: a calm dark theme for a reading-room environment (Qt style sheet)."""

from __future__ import annotations

__all__ = ["STYLE_SHEET", "apply_style"]

STYLE_SHEET = """
QWidget { background: #171c21; color: #d7dde3; font-size: 10pt; }
QMainWindow::separator { background: #0f1317; width: 3px; height: 3px; }
QSplitter::handle { background: #0f1317; }
QMenuBar { background: #11161a; }
QMenuBar::item:selected, QMenu::item:selected { background: #2d5d8a; }
QMenu { background: #1d2329; border: 1px solid #2b333b; }
QStatusBar { background: #11161a; color: #9aa4ae; }
QGroupBox { border: 1px solid #2a323a; border-radius: 6px; margin-top: 14px; padding: 6px;
            background: #1b2127; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #8fb8de;
                   font-weight: bold; }
QGroupBox QWidget { background: transparent; }
QLabel#heading { font-size: 22pt; font-weight: bold; color: #e9eef2; }
QLabel#sectionTitle { font-size: 11pt; font-weight: bold; color: #8fb8de; }
QLabel#caseTitle { font-weight: bold; color: #e9eef2; }
QLabel#muted, QLabel#viewTitle { color: #8a949e; }
QLabel#viewTitle { font-size: 9pt; padding: 1px 3px; }
QLabel#dropTitle { font-size: 16pt; font-weight: bold; color: #cfe3f5; background: transparent; }
QFrame#dropZone { border: 2px dashed #3d6f9c; border-radius: 14px; background: #1a232c; }
QFrame#dropZone[active="true"] { border-color: #e8c547; background: #22303d; }
QFrame#dropZone QLabel { background: transparent; }
QFrame#progressPanel { background: #1d2630; border-top: 1px solid #2d5d8a; }
QFrame#progressPanel QLabel { background: transparent; }
QLabel#stage { font-weight: bold; color: #e8c547; }
QLabel#planWarnings { background: #3a1d1f; color: #ffd2cc; border: 1px solid #d9534f;
                      border-radius: 5px; padding: 5px 7px; font-weight: bold; }
QPushButton { background: #26303a; border: 1px solid #36424e; border-radius: 5px;
              padding: 5px 12px; }
QPushButton:hover { background: #2e3a46; }
QPushButton:disabled { color: #5d6670; background: #1f262d; border-color: #2a323a; }
QToolButton { background: #26303a; border: 1px solid #36424e; border-radius: 5px; }
QToolButton:hover { background: #2e3a46; }
QToolButton:pressed, QPushButton:checked { background: #2d5d8a; border-color: #3b74aa; }
QToolButton:disabled { color: #5d6670; background: #1f262d; border-color: #2a323a; }
QTabBar::tab { background: #1b2127; color: #9aa4ae; padding: 4px 12px; border: 1px solid #2a323a;
               border-bottom: none; border-top-left-radius: 5px; border-top-right-radius: 5px; }
QTabBar::tab:selected { background: #26303a; color: #e9eef2; }
QPushButton#primary { background: #2d5d8a; border-color: #3b74aa; color: #ffffff; }
QPushButton#primary:hover { background: #3669a0; }
QPushButton#primary:disabled { background: #22313f; color: #6d7c8a; }
QProgressBar { background: #10151a; border: 1px solid #2a323a; border-radius: 4px; }
QProgressBar::chunk { background: #3b84c4; border-radius: 3px; }
QSlider::groove:horizontal { height: 4px; background: #2a323a; border-radius: 2px; }
QSlider::handle:horizontal { width: 12px; margin: -5px 0; border-radius: 6px;
                             background: #8fb8de; }
QSlider::sub-page:horizontal { background: #3b84c4; border-radius: 2px; }
QListWidget, QTableWidget, QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {
    background: #10151a; border: 1px solid #2a323a; border-radius: 4px; padding: 2px; }
QListWidget#steps { background: transparent; border: none; }
QListWidget#steps::item { padding: 3px 2px; }
QHeaderView::section { background: #1d2329; color: #9aa4ae; border: none; padding: 4px; }
QScrollArea { border: none; }
QCheckBox, QRadioButton { background: transparent; spacing: 6px; }
QCheckBox::indicator, QRadioButton::indicator { width: 13px; height: 13px;
    border: 1px solid #5a6773; background: #10151a; }
QCheckBox::indicator { border-radius: 3px; }
QRadioButton::indicator { border-radius: 7px; }
QCheckBox::indicator:checked, QRadioButton::indicator:checked {
    background: qradialgradient(cx:0.5, cy:0.5, radius:0.5, fx:0.5, fy:0.5,
                                stop:0 #8fc4f0, stop:0.55 #3b84c4, stop:0.6 #3b84c4,
                                stop:1 #3b84c4);
    border-color: #6aa8dc; }
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled { border-color: #333c45; }
"""


def apply_style(app) -> None:
    """Apply the style sheet to a QApplication (Fusion base so it looks the same on every OS)."""
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
