"""Tests on real infrastructure: network namespaces with real dnsmasq, a real kernel under qemu.

They need root (CI runs as root) and create (and always remove) their own namespaces.
"""
