#!/bin/sh
# The guest's /init (busybox sh): mount the kernel's filesystems, load the image's modules,
# bring up user-mode networking (guest 10.0.2.15, host 10.0.2.2), run /job/run, power off.
# Console lines starting with "GUEST-" are read by tests/guest/vm.py.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1
while read -r module; do
    insmod "$module" || echo "GUEST-WARN insmod $module failed"
done < /etc/guest/modules
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
fi
echo "GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
rc=0
if [ -f /job/run ]; then
    sh /job/run
    rc=$?
fi
echo "GUEST-EXIT rc=$rc"
sync
poweroff -f
