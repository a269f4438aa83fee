"""The USB telephony headset: its button requests in, its LEDs out.

- `events`: the typed inputs and `LedState`, stdlib only
- `interface`: the `Headset` protocol edge/ holds
- `virtual`: the twin (`VirtualHeadset`)
- `hidraw`: the real backend (`HidrawHeadset`, hidapi), reading reports through `protocol`
- `descriptor`, `layout`, `protocol`: report descriptors, the telephony layout, report codecs

Nothing is imported here, so `drivers.hid.events` stays as light as it is.
"""
