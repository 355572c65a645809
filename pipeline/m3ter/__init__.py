"""The production m3ter Config API client the loader writes through."""
