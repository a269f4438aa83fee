"""The seat: typed inputs, the seat state machine, the norms, MQTT, config, runtime and CLI.

Imports drivers and dsp; nothing imports edge but the CLI entry point and tests.
"""

__version__ = "0.1.0"
