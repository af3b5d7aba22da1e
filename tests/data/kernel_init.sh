#!/bin/busybox sh
# /init of the stand-in rootfs for tests/test_kernel_boot.py: the kernel has just unpacked
# rootfs + modules + this tools archive + overlay.gz; print what the test checks, power off.
bb=/bin/busybox
$bb mkdir -p /proc
$bb mount -t proc proc /proc
# like tc-config: the user tc (1001, group staff) exists by the time extensions load
echo "tc:x:1001:50:Linux User,,,:/home/tc:/bin/sh" >> /etc/passwd
st() { echo "STAT $1|$($bb stat -c '%a %u %g %F' "$1" 2>&1)"; }
echo "FIRECORE-BEGIN"
for p in / /tmp /opt /opt/bootlocal.sh /usr/local/tce.installed/openssh /home /home/tc /home/tc/.ssh \
         /home/tc/.ssh/authorized_keys /usr/local/tce.installed /tmp/builtin \
         /tmp/builtin/optional /tmp/builtin/onboot.lst /opt/firecore /opt/firecore/build.json \
         /opt/firecore/profile.env; do
  st "$p"
done
for f in /tmp/builtin/optional/* $($bb find /opt/firecore -mindepth 1 | $bb sort); do st "$f"; done
echo "ONBOOT|$($bb cat /tmp/builtin/onboot.lst 2>&1 | $bb tr '\n' ' ')"
if [ -d /tmp/builtin/optional ]; then
  cd /tmp/builtin/optional && for m in *.md5.txt; do
    echo "TCZREAD|$($bb su tc -c "$bb md5sum -c $m" 2>&1)"
  done
  cd /
fi
echo "TMPWRITE|$($bb su tc -c 'echo x > /tmp/bootlog.txt && echo ok' 2>&1)"
echo "BUILDJSON|$($bb cat /opt/firecore/build.json 2>&1 | $bb tr -d '\n ')"
echo "PROFILEENV|$($bb cat /opt/firecore/profile.env 2>&1 | $bb tr '\n' ' ')"
echo "CMDLINE|$($bb cat /proc/cmdline)"
echo "BOOTLOCAL-BEGIN"
$bb cat /opt/bootlocal.sh
echo "BOOTLOCAL-END"
echo "FIRECORE-END"
$bb poweroff -f
