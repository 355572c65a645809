"""A stateful local m3ter Config API over HTTPS: the second half of the embedded default."""

from pipeline.sandbox.m3ter.app import M3terConfig, M3terSandbox

__all__ = ["M3terConfig", "M3terSandbox"]
