"""Pure numpy signal processing for seatbox: levels, voice activity, conversation metrics.

No threads, no I/O, no imports from `edge` or `drivers`; audio never leaves this package.
"""
