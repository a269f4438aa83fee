"""The canonical telephony HID report descriptor the box presents to the PC (issue 14).

Two Application collections, report IDs on. First Telephony page (0x0B) usage Headset (0x05):

- **Report 1, input** (2 bytes with the ID), the headset's requests to the softphone:
  bit 0 Hook Switch (0x0B:0x20, Absolute: the value is the state, 1 = off-hook);
  bits 1-4 Phone Mute (0x0B:0x2F), Flash (0x0B:0x21), Redial (0x0B:0x24) and Drop
  (0x0B:0x26, the reject button) as Relative one-shot presses (1 then 0); bits 5-7 padding.
  Reject is Telephony Drop: the Telephony page has no "Reject" usage; Microsoft's Teams table
  maps reject to Button 1, which is not declared here.
- **Report 2, output** (2 bytes with the ID), the softphone's LEDs, all in one byte (as
  google/libhidtelephony writes them): bit 0 Off-Hook (0x08:0x17), bit 1 Ring (0x08:0x18),
  bit 2 Mute (0x08:0x09), bit 3 Hold (0x08:0x20), bit 4 Microphone (0x08:0x21), bit 5 Ringer
  (0x0B:0x9E); bits 6-7 padding.

Then Consumer page (0x0C) usage Consumer Control (0x01), the headset's volume buttons, which
hosts take as their volume keys (Linux's hid-input maps them to KEY_VOLUMEUP/DOWN):

- **Report 3, input** (2 bytes with the ID): bit 0 Volume Increment (0x0C:0xE9), bit 1
  Volume Decrement (0x0C:0xEA), one-bit Absolute buttons (1 while held: a step is a press
  report then a release report); bits 2-7 padding. Declared as the real EPOS IMPACT D1, Yealink WH66
  and Jabra EVOLVE LINK MS declare their volume (tests/data/hid/: one-bit Data, Variable,
  Absolute in a Consumer Control collection).

Bits count from the first data byte after the report ID. `tests/test_gadget.py` checks these positions with the project's parser and with hid-tools.
"""

from __future__ import annotations

INPUT_REPORT_ID = 1
OUTPUT_REPORT_ID = 2
CONSUMER_REPORT_ID = 3
# Bit of each control in the data byte after the report ID (names as in drivers/hid/layout.py).
INPUT_BITS: dict[str, int] = {
    "hook_switch": 0,
    "phone_mute": 1,
    "flash": 2,
    "redial": 3,
    "drop": 4,
}
LED_BITS: dict[str, int] = {
    "off_hook": 0,
    "ring": 1,
    "mute": 2,
    "hold": 3,
    "microphone": 4,
    "ringer": 5,
}
CONSUMER_BITS: dict[str, int] = {
    "volume_up": 0,
    "volume_down": 1,
}
# The longest report with its ID byte: f_hid's report_length (and the endpoint's packet size).
REPORT_LENGTH = 2

# fmt: off
CANONICAL_DESCRIPTOR = bytes([
    0x05, 0x0B,        # Usage Page (Telephony)
    0x09, 0x05,        # Usage (Headset)
    0xA1, 0x01,        # Collection (Application)
    0x85, 0x01,        #   Report ID (1): input
    0x15, 0x00,        #   Logical Minimum (0)
    0x25, 0x01,        #   Logical Maximum (1)
    0x75, 0x01,        #   Report Size (1)
    0x09, 0x20,        #   Usage (Hook Switch)
    0x95, 0x01,        #   Report Count (1)
    0x81, 0x02,        #   Input (Data, Variable, Absolute)
    0x09, 0x2F,        #   Usage (Phone Mute)
    0x09, 0x21,        #   Usage (Flash)
    0x09, 0x24,        #   Usage (Redial)
    0x09, 0x26,        #   Usage (Drop): reject
    0x95, 0x04,        #   Report Count (4)
    0x81, 0x06,        #   Input (Data, Variable, Relative)
    0x95, 0x03,        #   Report Count (3)
    0x81, 0x01,        #   Input (Constant): padding
    0x85, 0x02,        #   Report ID (2): output
    0x05, 0x08,        #   Usage Page (LED)
    0x09, 0x17,        #   Usage (Off-Hook)
    0x09, 0x18,        #   Usage (Ring)
    0x09, 0x09,        #   Usage (Mute)
    0x09, 0x20,        #   Usage (Hold)
    0x09, 0x21,        #   Usage (Microphone)
    0x95, 0x05,        #   Report Count (5)
    0x91, 0x02,        #   Output (Data, Variable, Absolute)
    0x05, 0x0B,        #   Usage Page (Telephony)
    0x09, 0x9E,        #   Usage (Ringer)
    0x95, 0x01,        #   Report Count (1)
    0x91, 0x02,        #   Output (Data, Variable, Absolute)
    0x95, 0x02,        #   Report Count (2)
    0x91, 0x01,        #   Output (Constant): padding
    0xC0,              # End Collection
    0x05, 0x0C,        # Usage Page (Consumer)
    0x09, 0x01,        # Usage (Consumer Control)
    0xA1, 0x01,        # Collection (Application)
    0x85, 0x03,        #   Report ID (3): input, volume
    0x15, 0x00,        #   Logical Minimum (0)
    0x25, 0x01,        #   Logical Maximum (1)
    0x75, 0x01,        #   Report Size (1)
    0x09, 0xE9,        #   Usage (Volume Increment)
    0x09, 0xEA,        #   Usage (Volume Decrement)
    0x95, 0x02,        #   Report Count (2)
    0x81, 0x02,        #   Input (Data, Variable, Absolute)
    0x95, 0x06,        #   Report Count (6)
    0x81, 0x01,        #   Input (Constant): padding
    0xC0,              # End Collection
])
# fmt: on
