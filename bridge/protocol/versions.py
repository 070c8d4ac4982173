"""Server versions that change a layout we read or write, named as IB names them.

A layout is chosen once per connection from the negotiated version (see `decoder.py`),
never per message. Source: the official client's `server_versions.py`.
"""

MIN_SERVER_VER_OPTIONAL_CAPABILITIES = 72
MIN_SERVER_VER_PRIMARYEXCH = 75
MIN_SERVER_VER_ENCODE_MSG_ASCII7 = 153
MIN_SERVER_VER_PRICE_BASED_VOLATILITY = 156
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163
MIN_SERVER_VER_SIZE_RULES = 164
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166
MIN_SERVER_VER_BOND_ISSUERID = 176  # also: symbolSamples rows gain description and issuerId
MIN_SERVER_VER_FUND_DATA_FIELDS = 179
MIN_SERVER_VER_LAST_TRADE_DATE = 182
MIN_SERVER_VER_INELIGIBILITY_REASONS = 186
MIN_SERVER_VER_ERROR_TIME = 194
# historicalData loses its start/end fields and a separate historicalDataEnd (108) closes the answer.
MIN_SERVER_VER_HISTORICAL_DATA_END = 196
MIN_SERVER_VER_CURRENT_TIME_IN_MILLIS = 197
# From here on every message id is a raw 4-byte big-endian integer, and ids above
# PROTOBUF_MSG_ID carry protobuf payloads (which we pass through as raw bytes).
MIN_SERVER_VER_RAW_INT_MSG_ID = 201
PROTOBUF_MSG_ID = 200

# The text layouts we implement. A server outside this range is refused at handshake.
MIN_SUPPORTED = 157
MAX_SUPPORTED = 200
