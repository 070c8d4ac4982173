"""The simulator's market as a compact table: a few lines per kind of instrument, expanded.

Stocks and ETFs by primary exchange and industry ("SYMBOL:price ..."), futures by root with
their exchange's month cycle and last-trading-day rule (the front contracts roll with the
date), forex pairs, PAXOS crypto, indices, and small option chains on SPY and AAPL. `build`
turns it into `Instrument`s; `python -m bridge.simulator --list` prints the result.

ConIds are IB's where we know them (`KNOWN_CON_IDS`) and otherwise made up, stable and
shaped like IB's: a hash of what names the contract, so ES 202703 keeps its conId whatever
the date.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib

from bridge.protocol.events import Contract

from . import expiries
from .instrument import Instrument

STK_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GTC,IOC,LIT,LMT,MIT,MKT,MOC,MOO,PEGMID,REL,STP,STPLMT,TRAIL,TRAILLIMIT,WHATIF"  # noqa: E501
OPT_ORDER_TYPES = "ALERT,ALGO,ALLOC,AVGCOST,COND,DAY,GTC,IOC,LMT,MKT,PEGMID,REL,STP,STPLMT,TRAIL,WHATIF"
CRYPTO_ORDER_TYPES = "ALGO,DAY,IOC,LMT,MKT,STP,STPLMT,WHATIF"
CASH_ORDER_TYPES = "ALGO,AVGCOST,DAY,GTC,IOC,LMT,MKT,REL,STP,STPLMT,TRAIL,WHATIF"
FUT_ORDER_TYPES = "ALERT,DAY,GTC,IOC,LIT,LMT,MIT,MKT,MTL,STP,STPLMT,TRAIL,TRAILLIMIT,WHATIF"
US_STOCK_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,PSX"
US_OPT_EXCHANGES = (
    "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,GEMINI,EDGX,MERCURY,PEARL,EMERALD"
)

# --- the table ---------------------------------------------------------------------------------

# (primary exchange, industry, "SYMBOL:price ..."). NASDAQ stocks trade in IB's class NMS.
# fmt: off
STOCKS = (
    ("NASDAQ", "Technology", "AAPL:227.5 MSFT:418 NVDA:135 AVGO:172 ADBE:510 CSCO:58 INTC:21 QCOM:165 TXN:198 "
     "AMD:138 INTU:640 AMAT:178 LRCX:74 MU:98 ADI:220 KLAC:690 SNPS:520 CDNS:290 PANW:360 CRWD:350 FTNT:95 "
     "MRVL:90 NXPI:235 MCHP:70 ON:68 WDAY:255 DDOG:135 TEAM:240 ZS:205 ADSK:295 CTSH:78 PLTR:65 ARM:140 "
     "SMCI:38 ASML:700 PYPL:86 ADP:300 PAYX:145 TTD:120 SHOP:110 LIN:460"),
    ("NASDAQ", "Communications", "GOOGL:178 GOOG:180 META:590 NFLX:880 CMCSA:42 TMUS:235 EA:150 CHTR:390 "
     "WBD:10 SIRI:27"),
    ("NASDAQ", "Consumer, Cyclical", "AMZN:205 TSLA:345 COST:925 SBUX:98 BKNG:5000 MAR:280 ABNB:135 ROST:150 "
     "ORLY:1200 DLTR:72 LULU:330 PCAR:115 CPRT:60 FAST:80 DASH:170 MELI:1990"),
    ("NASDAQ", "Consumer, Non-cyclical", "PEP:155 MDLZ:63 AMGN:280 GILD:90 VRTX:480 REGN:760 ISRG:540 "
     "IDXX:420 BIIB:155 MNST:53 KDP:32 KHC:30 CTAS:210 VRSK:285 GEHC:85 MRNA:42 DXCM:78 ILMN:140"),
    ("NASDAQ", "Financial", "CME:230 COIN:300 HOOD:38 MSTR:390 NDAQ:80"),
    ("NASDAQ", "Utilities", "EXC:38 XEL:70 AEP:100 CEG:250"),
    ("NASDAQ", "Industrial", "HON:225 CSX:34 ODFL:210"),
    ("NYSE", "Financial", "JPM:245 V:315 MA:525 BAC:46 WFC:72 GS:590 MS:130 C:70 AXP:300 BLK:1020 SPGI:510 "
     "USB:50 PNC:205 TFC:45 COF:185 MET:82 PRU:125 AIG:76 TRV:260 CB:285 MMC:230 AON:380 ICE:160 BX:185 "
     "KKR:150 SCHW:80"),
    ("NYSE", "Consumer, Non-cyclical", "JNJ:155 PG:170 KO:63 PFE:26 MRK:100 ABBV:175 LLY:800 UNH:600 TMO:530 "
     "DHR:240 ABT:117 BMY:58 CVS:55 CI:330 ELV:400 MO:57 PM:130 CL:92 KMB:135 GIS:63 SYK:390 BSX:92 ZTS:175"),
    ("NYSE", "Consumer, Cyclical", "HD:410 WMT:90 DIS:115 MCD:295 NKE:78 LOW:270 TGT:130 GM:55 F:11 UBER:70 "
     "CMG:60 TJX:125 YUM:135 DAL:63 RCL:240"),
    ("NYSE", "Industrial", "BA:155 CAT:390 GE:180 MMM:130 UPS:130 DE:450 LMT:530 RTX:120 UNP:240 "
     "ETN:370 EMR:130 GD:280 NOC:490 WM:225 FDX:290"),
    ("NYSE", "Technology", "IBM:220 ORCL:190 CRM:330 ACN:355 NOW:1050 SNOW:170 DELL:130 HPQ:36 ANET:110"),
    ("NYSE", "Energy", "XOM:120 CVX:160 COP:110 SLB:43 OXY:50 HAL:30 PSX:130 MPC:160 VLO:135 EOG:130 KMI:27 "
     "WMB:57"),
    ("NYSE", "Communications", "T:23 VZ:43"),
    ("NYSE", "Utilities", "NEE:75 DUK:115 SO:88 D:57"),
    ("NYSE", "Basic Materials", "FCX:44 NEM:42 DOW:45 APD:320"),
)
ETFS = (
    ("ARCA", "SPY:595 IVV:598 VOO:546 VTI:300 IWM:235 DIA:440 EEM:44 GLD:245 SLV:28 HYG:80 LQD:110 XLF:49 "
     "XLK:235 XLE:92 XLV:145 XLI:140 XLY:215 XLP:80 XLU:78 XLB:90 XLRE:42 XLC:95 GDX:37 GDXJ:47 USO:76 UNG:14 "
     "KRE:63 XBI:97 XOP:140 ARKK:57 VNQ:93 VEA:50 VWO:45 SOXL:30 AGG:98 VUG:400 VTV:178 SCHD:28"),
    ("NASDAQ", "QQQ:510 TQQQ:80 SQQQ:8 TLT:93 IEF:94 SMH:245 IBB:140 VXUS:61 BND:72"),
)
# IB's conIds for the instruments where we know them; every other one is made up.
KNOWN_CON_IDS = {
    "STK:AAPL": 265598, "STK:MSFT": 272093, "STK:IBM": 8314, "STK:AMZN": 3691937, "STK:NVDA": 4815747,
    "STK:TSLA": 76792991, "STK:SPY": 756733, "STK:QQQ": 320227571, "STK:SMH": 229725622, "IND:NDX": 416843,
    "CRYPTO:BTC": 479624278, "CRYPTO:ETH": 495759171,
    "CASH:EUR.USD": 12087792, "CASH:GBP.USD": 12087797, "CASH:USD.JPY": 15016059, "IND:SPX": 416904,
    "IND:VIX": 13455763, "FUT:ES:202612": 649180695, "IND:ES:CME": 11004968,
}
# The few stocks whose long names the tests and docs show; the rest go by their symbol.
LONG_NAMES = {"AAPL": "APPLE INC", "MSFT": "MICROSOFT CORP", "SPY": "SPDR S&P 500 ETF TRUST"}
ISINS = {"AAPL": "US0378331005", "MSFT": "US5949181045"}
DIVIDEND_YIELDS = {"AAPL": 0.0045, "MSFT": 0.0075, "SPY": 0.012, "JPM": 0.021, "KO": 0.03, "XOM": 0.033}

# Futures: (root, symbol IB names it by, exchange, months, last-day rule, multiplier, min tick,
# price, long name, underlying index). Three contracts each, the front first.
FUTURES = (
    ("ES", "ES", "CME", "HMUZ", "equity", "50", 0.25, 5875.0, "E-mini S&P 500", "ES"),
    ("MES", "MES", "CME", "HMUZ", "equity", "5", 0.25, 5875.0, "Micro E-mini S&P 500", "MES"),
    ("NQ", "NQ", "CME", "HMUZ", "equity", "20", 0.25, 21000.0, "E-mini Nasdaq-100", "NQ"),
    ("MNQ", "MNQ", "CME", "HMUZ", "equity", "2", 0.25, 21000.0, "Micro E-mini Nasdaq-100", "MNQ"),
    ("YM", "YM", "CBOT", "HMUZ", "equity", "5", 1.0, 44000.0, "Mini Sized Dow Jones Industrial Avg $5", "YM"),
    ("RTY", "RTY", "CME", "HMUZ", "equity", "50", 0.1, 2350.0, "E-mini Russell 2000 Index", "RTY"),
    ("CL", "CL", "NYMEX", expiries.MONTHLY, "crude", "1000", 0.01, 70.0, "Light Sweet Crude Oil", "CL"),
    ("NG", "NG", "NYMEX", expiries.MONTHLY, "gas", "10000", 0.001, 3.2, "Henry Hub Natural Gas", "NG"),
    ("GC", "GC", "COMEX", "GJMQVZ", "metals", "100", 0.1, 2650.0, "Gold", "GC"),
    ("SI", "SI", "COMEX", "HKNUZ", "metals", "5000", 0.005, 31.0, "Silver", "SI"),
    ("HG", "HG", "COMEX", "HKNUZ", "metals", "25000", 0.0005, 4.2, "Copper", "HG"),
    ("ZB", "ZB", "CBOT", "HMUZ", "treasuries", "1000", 1 / 32, 118.0, "30 Year US Treasury Bond", "ZB"),
    ("ZN", "ZN", "CBOT", "HMUZ", "treasuries", "1000", 1 / 64, 110.5, "10-Year T-Note", "ZN"),
    ("ZF", "ZF", "CBOT", "HMUZ", "treasuries", "1000", 1 / 128, 107.0, "5 Year US Treasury Note", "ZF"),
    ("ZC", "ZC", "CBOT", "HKNUZ", "grains", "5000", 0.25, 440.0, "Corn Futures", "ZC"),
    ("ZS", "ZS", "CBOT", "FHKNQUX", "grains", "5000", 0.25, 1000.0, "Soybean Futures", "ZS"),
    ("6E", "EUR", "CME", "HMUZ", "currencies", "125000", 0.00005, 1.085, "European Monetary Union Euro", "EUR"),
    ("6J", "JPY", "CME", "HMUZ", "currencies", "12500000", 0.0000005, 0.0067, "Japanese Yen", "JPY"),
    ("6B", "GBP", "CME", "HMUZ", "currencies", "62500", 0.0001, 1.27, "British pound", "GBP"),
)
FUTURE_CONTRACTS = 3
# (sessions: open-close, US/Central) by exchange; regular hours for the index futures.
FUTURE_HOURS = {"CME": ("1700", "1600"), "CBOT": ("1700", "1600"), "NYMEX": ("1700", "1600"),
                "COMEX": ("1700", "1600")}
FUTURE_LIQUID = {"equity": ("0830", "1500"), "treasuries": ("0720", "1400"), "grains": ("0830", "1320")}

# Forex on IDEALPRO: pair:price, named as TWS names them (symbol = base, currency = quote).
FOREX = ("EUR.USD:1.0842 GBP.USD:1.2710 USD.JPY:151.20 USD.CHF:0.8830 AUD.USD:0.6540 USD.CAD:1.3950 "
         "NZD.USD:0.5890 EUR.GBP:0.8530 EUR.JPY:163.90 EUR.CHF:0.9570 GBP.JPY:192.20 AUD.JPY:98.90 "
         "USD.MXN:20.15 USD.CNH:7.2400")
CURRENCY_NAMES = {"EUR": "European Monetary Union Euro", "GBP": "British pound", "USD": "US dollar",
                  "AUD": "Australian dollar", "NZD": "New Zealand dollar"}

# PAXOS crypto against USD: symbol, name, price, min tick.
CRYPTO = (("BTC", "Bitcoin", 64250.0, 0.25), ("ETH", "Ethereum", 3150.0, 0.05), ("LTC", "Litecoin", 85.0, 0.01),
          ("BCH", "Bitcoin Cash", 430.0, 0.05))

# Indices: symbol, exchange, long name, level, annual volatility of its options.
INDICES = (("SPX", "CBOE", "S&P 500 Stock Index", 5890.0, 0.15), ("NDX", "NASDAQ", "NASDAQ 100 Stock Index",
           20950.0, 0.19), ("VIX", "CBOE", "CBOE Volatility Index", 15.5, 0.9), ("RUT", "RUSSELL",
           "Russell 2000 Stock Index", 2340.0, 0.22))

# Option chains: underlying, expiries (monthly, third Fridays), strikes either side of the money,
# strike step, the underlying's implied volatility.
OPTION_CHAINS = (("SPY", 2, 3, 5.0, 0.14), ("AAPL", 2, 3, 5.0, 0.25))

# fmt: on


# --- expansion ---------------------------------------------------------------------------------


def con_id(key: str) -> int:
    """IB's conId when we know it, else a stable made-up one in the range IB's ids live in."""
    known = KNOWN_CON_IDS.get(key)
    return known if known is not None else 100_000_000 + zlib.crc32(key.encode()) % 700_000_000


def _prices(text: str) -> list[tuple[str, float]]:
    return [(sym, float(price)) for sym, price in (item.split(":") for item in text.split())]


def _stock(symbol: str, primary: str, price: float, industry: str, etf: bool) -> Instrument:
    trading_class = "NMS" if primary == "NASDAQ" else symbol
    isin = ISINS.get(symbol)
    return Instrument(
        contract=Contract(symbol, "STK", "SMART", "USD", con_id(f"STK:{symbol}"), primary, local_symbol=symbol,
                          trading_class=trading_class),
        long_name=LONG_NAMES.get(symbol, symbol), market_name=trading_class, min_tick=0.01,
        valid_exchanges=US_STOCK_EXCHANGES, order_types=STK_ORDER_TYPES, time_zone_id="US/Eastern",
        start_price=price, volatility=0.0004, lot=100, industry=industry,
        category={"AAPL": "Computers", "MSFT": "Software"}.get(symbol, "ETF" if etf else industry),
        subcategory={"AAPL": "Computers", "MSFT": "Applications Software"}.get(symbol, ""),
        stock_type="ETF" if etf else "COMMON", sec_ids=(("ISIN", isin),) if isin else (), hours=("0400", "2000"),
        liquid=("0930", "1600"), depth_makers=(primary, "ARCA", "BATS", "IEX", "EDGX") if primary != "ARCA" else
        ("ARCA", "NASDAQ", "BATS", "IEX", "EDGX"), implied_vol=0.18 if etf else 0.3,
        dividend_yield=DIVIDEND_YIELDS.get(symbol, 0.012 if etf else 0.0),
    )  # fmt: skip


def _future(row: tuple, contract_month: str, last_day: dt.date) -> Instrument:
    root, symbol, exchange, _, rule, multiplier, tick, price, name, under = row
    code = expiries.month_code(contract_month)
    local = expiries.cbot_local_symbol(root, contract_month) if exchange == "CBOT" else f"{root}{code}"
    expiry = f"{last_day:%Y%m%d}"
    return Instrument(
        contract=Contract(symbol, "FUT", exchange, "USD", con_id(f"FUT:{root}:{contract_month}"),
                          last_trade_date_or_contract_month=expiry, multiplier=multiplier, local_symbol=local,
                          trading_class=root),
        long_name=name, market_name=root, min_tick=tick, valid_exchanges=f"{exchange},QBALGO",
        order_types=FUT_ORDER_TYPES, time_zone_id="US/Central", start_price=price, volatility=0.0002, lot=5,
        under_con_id=con_id(f"IND:{under}:{exchange}"), under_symbol=under, under_sec_type="IND",
        contract_month=contract_month, real_expiration_date=expiry, last_trade_time="08:30" if rule == "equity"
        else "13:30", hours=FUTURE_HOURS[exchange], liquid=FUTURE_LIQUID.get(rule), depth_makers=(exchange,),
    )  # fmt: skip


def _forex(pair: str, price: float) -> Instrument:
    base, quote = pair.split(".")
    tick = 0.005 if quote in ("JPY",) else 0.00005 if quote != "MXN" else 0.0001
    return Instrument(
        contract=Contract(base, "CASH", "IDEALPRO", quote, con_id(f"CASH:{pair}"), local_symbol=pair,
                          trading_class=pair),
        long_name=CURRENCY_NAMES.get(base, base), market_name=pair, min_tick=tick, valid_exchanges="IDEALPRO",
        order_types=CASH_ORDER_TYPES, time_zone_id="US/Eastern", start_price=price, volatility=0.00005,
        lot=1_000_000, bbo_exchange="", hours=("1715", "1700"), depth_makers=("IDEALPRO",), trades=False,
    )  # fmt: skip


def _crypto(symbol: str, name: str, price: float, tick: float) -> Instrument:
    return Instrument(
        contract=Contract(symbol, "CRYPTO", "PAXOS", "USD", con_id(f"CRYPTO:{symbol}"), local_symbol=f"{symbol}.USD",
                          trading_class=symbol),
        long_name=name, market_name=symbol, min_tick=tick, valid_exchanges="PAXOS", order_types=CRYPTO_ORDER_TYPES,
        time_zone_id="US/Central", start_price=price, volatility=0.0003, lot=0.05, size_increment=0.0001,
        bbo_exchange="", depth_makers=("PAXOS",), weekends=True,
    )  # fmt: skip


def _index(symbol: str, exchange: str, name: str, level: float, iv: float) -> Instrument:
    return Instrument(
        contract=Contract(symbol, "IND", exchange, "USD", con_id(f"IND:{symbol}"), local_symbol=symbol,
                          trading_class=symbol),
        long_name=name, market_name=symbol, min_tick=0.01, valid_exchanges=exchange, order_types="",
        time_zone_id="US/Central", start_price=level, volatility=0.0002, lot=0, bbo_exchange="",
        hours=("0830", "1500"), quotes=False, trades=False, implied_vol=iv,
    )  # fmt: skip


def _option(under: Instrument, expiry: dt.date, strike: float, right: str, iv: float, today: dt.date) -> Instrument:
    c = under.contract
    occ = f"{c.symbol:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"  # OCC's 21-character symbol
    day = f"{expiry:%Y%m%d}"
    # A first price for the path: the option's value today (the market reprices it every step).
    price = round(max(black_scholes(under.start_price, strike, max(year_fraction(expiry, today), 1e-4), iv,
                              right)[0], 0.01), 2)  # fmt: skip
    return Instrument(
        contract=Contract(c.symbol, "OPT", "SMART", "USD", con_id(f"OPT:{occ}"), last_trade_date_or_contract_month=day,
                          strike=strike, right=right, multiplier="100", local_symbol=occ, trading_class=c.symbol),
        long_name=under.long_name, market_name=c.symbol, min_tick=0.01, valid_exchanges=US_OPT_EXCHANGES,
        order_types=OPT_ORDER_TYPES, time_zone_id="US/Eastern", start_price=price, volatility=0.002, lot=10,
        under_con_id=c.con_id, under_symbol=c.symbol, under_sec_type="STK", contract_month=day[:6],
        real_expiration_date=day, last_trade_time="16:00", hours=("0930", "1600"), depth_makers=("CBOE", "ISE"),
        implied_vol=iv,
    )  # fmt: skip


def year_fraction(expiry: dt.date, today: dt.date) -> float:
    """Years to the expiry's close (16:00 New York, taken as 21:00 UTC), from `today`'s midnight UTC."""
    return ((expiry - today).days + 21 / 24) / 365.0


RATE = 0.04  # the risk-free rate options are priced with


def black_scholes(spot: float, strike: float, years: float, vol: float, right: str) -> tuple[float, ...]:
    """(price, delta, gamma, vega per 1.00 of volatility, theta per day) of a European option."""
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + vol * vol / 2) * years) / sq
    d2 = d1 - sq
    nd1 = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
    disc = math.exp(-RATE * years)
    cdf1, cdf2 = _cdf(d1), _cdf(d2)
    decay = -spot * nd1 * vol / (2 * math.sqrt(years))
    if right == "C":
        price, delta, theta = spot * cdf1 - strike * disc * cdf2, cdf1, decay - RATE * strike * disc * cdf2
    else:
        price = strike * disc * (1 - cdf2) - spot * (1 - cdf1)
        delta, theta = cdf1 - 1, decay + RATE * strike * disc * (1 - cdf2)
    return price, delta, nd1 / (spot * sq), spot * nd1 * math.sqrt(years), theta / 365


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def build(today: dt.date) -> tuple[Instrument, ...]:
    """Every instrument, with the futures and options that are listed on `today`."""
    out: list[Instrument] = []
    for symbol, name, price, tick in CRYPTO:
        out.append(_crypto(symbol, name, price, tick))
    for primary, industry, text in STOCKS:
        out += [_stock(sym, primary, price, industry, False) for sym, price in _prices(text)]
    for primary, text in ETFS:
        out += [_stock(sym, primary, price, "Funds", True) for sym, price in _prices(text)]
    out += [_forex(pair, price) for pair, price in _prices(FOREX)]
    for row in FUTURES:
        months = expiries.contract_months(row[4], row[3], today, FUTURE_CONTRACTS)
        out += [_future(row, month, day) for month, day in months]
        if row[0] == "ES" and "202612" not in {m for m, _ in months}:
            # ESZ6 is the December 2026 E-mini the tests and docs name; it stays whatever the date.
            out.append(_future(row, "202612", expiries.third_friday(2026, 12)))
    out += [_index(*row) for row in INDICES]
    by_symbol = {i.contract.symbol: i for i in out if i.contract.sec_type == "STK"}
    for symbol, n_expiries, n_strikes, step, iv in OPTION_CHAINS:
        under = by_symbol[symbol]
        atm = round(under.start_price / step) * step
        strikes = [atm + k * step for k in range(-n_strikes + 1, n_strikes)]
        for expiry in expiries.option_expiries(today + dt.timedelta(days=1), n_expiries):
            out += [_option(under, expiry, strike, right, iv, today) for strike in strikes for right in ("C", "P")]
    return _unique(out)


def _unique(instruments: list[Instrument]) -> tuple[Instrument, ...]:
    seen: dict[int, Instrument] = {}
    for inst in instruments:
        other = seen.setdefault(inst.con_id, inst)
        if other is not inst:
            raise AssertionError(f"conId {inst.con_id} names both {other.label()} and {inst.label()}")
    return tuple(instruments)
