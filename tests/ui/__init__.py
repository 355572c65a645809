"""The Dagster UI in headless Chromium: run with `uv run --frozen --group ui pytest tests/ui`."""
