"""Leaf helpers every room may import: the error kinds, schema primitives (sections, durations,
ids, messages), and safe reading of small files. Imports nothing else of the project but
`drivers.errors`."""
