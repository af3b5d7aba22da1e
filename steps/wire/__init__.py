"""What crosses the wire when a Pi boots: frames, DHCP and TFTP codecs, raw sockets, each model's
boot sequence and TFTP limits (``pimodels``), the virtual Pi, and the diagnosis codes that the
self-test and the packet monitor share.

It reads config.txt (``steps.picore.configtxt``) to know which files a Pi asks for.
"""
