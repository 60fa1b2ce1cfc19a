"""Tests of runtime/modelserver, started as real processes on loopback."""
