"""Throwaway real servers and Phalanx-layout repositories for tests, benchmarks and the demo
(in the style of ``safir.testing``): nothing here fakes an API."""
