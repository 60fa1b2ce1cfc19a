"""Tests of what runs beside the operator (runtime/)."""
