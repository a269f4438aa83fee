"""The box as a USB device to the PC: a composite gadget built in configfs (`configfs`) whose
HID function carries the canonical telephony descriptor (`descriptor`). Stdlib only: the QEMU
guest test runs `python -m drivers.gadget.configfs` without the project's dependencies."""
