"""ScienceMode2, the protocol of the HASOMED RehaStim2: codec, driver and emulator.

``codec`` turns messages into frames and back (pure bytes), ``driver`` is
:class:`~electrostim.devices.RehaStim2` on a serial port, ``emulator``
:class:`~electrostim.devices.RehaStim2Emulator` on a pseudo-terminal. Their public
names are imported from :mod:`electrostim.devices`, which loads each on first use.
"""
