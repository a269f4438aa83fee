"""Audio in the headset path: per-period levels of the mic (tx) and receive (rx) channels.

Audio samples never leave dsp/ and this package; the seat gets only `AudioLevels`.

- `events`: the typed inputs (`AudioLevels`, `AudioStatus`, `MixerStatus`), stdlib only
- `interface`: the `Audio` protocol edge/ holds
- `virtual`: the twin (`VirtualAudio`), generated levels; WAV files through `wav`
- `capture`: the real backend (`SoundDeviceAudio`, PortAudio), metered by `levels`
- `alsa_mixer`: mute and receive-cap enforcement on the headset's own mixer
- `wavfile`: reading audio files for the meters

Nothing is imported here: numpy, scipy and PortAudio load only with the modules that need them.
"""
