"""The call host: the PC's softphone as seen through the USB gadget bridge.

Its LED output reports (Ring, Off-Hook, Hold, Mute) are the authoritative call state.

- `events`: `HostLeds`, stdlib only
- `interface`: the `CallHost` protocol edge/ holds
- `virtual`: the twin (`VirtualCallHost`)
"""
