"""A QEMU guest running Debian's own kernel, for tests that need a real kernel: power cuts on a
virtual disk, and (the bridge) USB gadgets on dummy_hcd, uhid, snd-aloop.

    image = build_image(GuestSpec(modules=("virtio_blk", "ext4")))   # cached, ~1 min first time
    with Guest(image, job="echo hi", disks=[Disk(raw)], net=True) as vm:
        vm.wait_line(re.compile("hi"), 60)
        vm.kill()                                                     # a power cut

See tests/guest/README.md.
"""

from .build import GuestImage, GuestSpec, GuestUnavailable, build_image, cache_root
from .vm import Disk, Guest, qemu_binary

__all__ = [
    "Disk",
    "Guest",
    "GuestImage",
    "GuestSpec",
    "GuestUnavailable",
    "build_image",
    "cache_root",
    "qemu_binary",
]
