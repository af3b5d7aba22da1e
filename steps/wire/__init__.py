"""What crosses the wire when a Pi boots: frames, DHCP and TFTP codecs, raw sockets, each model's
boot sequence and TFTP limits (``pimodels``), the virtual Pi, the diagnosis codes that the
self-test and the packet monitor share, and the monitor itself.

The monitor, bottom up: ``pcap`` (capture files, read as a stream and written) and ``capture``
(live AF_PACKET with a kernel filter) give records; ``decode`` turns them into the packet events
of ``monitor_events`` and follows TFTP transfers across ephemeral ports; ``bootfiles`` and
``mdns`` know the files a Pi reads and the app's announcement; ``timeline`` keeps one state
machine per Pi and decides stages and diagnoses (``diagnosis``); ``monitor`` drives them.

It reads config.txt (``steps.picore.configtxt``) to know which files a Pi asks for.
"""
