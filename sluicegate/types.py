"""Type aliases shared across the package. Aliases only: no behaviour lives here."""

from typing import Any

JSONObject = dict[str, Any]
