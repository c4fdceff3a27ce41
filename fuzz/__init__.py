"""Fuzz targets for guardrail's parsers of untrusted input; run them with `make fuzz`."""
