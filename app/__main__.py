"""``python -m app``: same as ``spinect-app``."""

from app.main import main

raise SystemExit(main())
