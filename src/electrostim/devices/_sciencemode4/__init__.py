"""ScienceMode4, the protocol of the HASOMED P24 / RehaMove3: codec, driver and emulator.

``codec`` turns messages into frames and back (pure bytes), ``driver`` is
:class:`~electrostim.devices.P24` on a serial port, ``emulator``
:class:`~electrostim.devices.P24Emulator` on a pseudo-terminal. Their public names are
imported from :mod:`electrostim.devices`, which loads each on first use.
"""
