"""Sample consumers of the tws-bridge bus (docs/bus.md) and the small client they share.

Nothing here imports the bridge: consumers depend only on the bus document.
"""
