"""Simulators of the two outside services: the VPS.org backup API and Slack. Used by the console, tests and benchmarks."""
