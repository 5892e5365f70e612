"""`python -m strata train|evaluate ...`."""
from .cli import main

raise SystemExit(main())
