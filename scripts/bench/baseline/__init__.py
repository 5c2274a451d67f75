"""The raw baseline: aiohttp + the bare driver, hand-written SQL, orjson, no ORM."""
