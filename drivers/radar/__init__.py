"""The presence radar (HLK-LD2410 family): its readings in, its configuration out.

- `events`: the typed inputs (`RadarReport`, `RadarStatus`), stdlib only
- `interface`: the `Radar` protocol edge/ holds
- `virtual`: the twin (`VirtualRadar`)
- `uart`: the real backend (`LD2410Radar`) on a serial port, speaking `ld2410`
- `ld2410`: the UART protocol: frames, commands, ACKs, the stream parser, `LD2410Link`
- `probe`: a bounded look at a port (`seatbox doctor`)
- `ld2410_emulator`: the module's side of the protocol, for tests and bench work

Nothing is imported here, so `drivers.radar.events` stays as light as it is.
"""
