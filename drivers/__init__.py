"""All I/O with devices: headset HID, audio, radar, the call host. One module per device kind.

Each device has an interface, a real backend and a virtual twin with the same interface.
Drivers put typed inputs on the seat's queue through a sink callable; they never import edge.
"""
