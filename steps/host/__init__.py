"""The serving host: its interfaces and firewall, the preflight checks, dnsmasq (config and
service), the TFTP root (releases and the atomic switch) and the rehearsal namespaces.

It drives the wire layer (the rehearsal boots a virtual Pi) and never the other way round.
"""
