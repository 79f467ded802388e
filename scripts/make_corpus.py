"""Generate the bundled travel-booking slot-filling corpus in data/.

The corpus is written from scratch: about 130 hand-written templates over a
small world of cities, airlines, airports, dates, times and fares, filled by a
seeded ``random.Random``.  Slot and intent names follow the ATIS conventions
(``fromloc.city_name``, ``depart_date.month_name``, ``atis_flight``, ...), so a
model trained on it speaks the same language as one trained on ATIS.

It contains the lecture's signature pair in both splits: "arrive taipei on
november 2nd" (taipei is the destination) and "leave taipei on november 2nd"
(taipei is the place of departure), plus a whole family of utterances in which
only the verb decides between departure and arrival.

Some cities and airlines occur only in the test split, so a 1-of-N encoder
maps them to its "Other" bucket while letter-trigram word hashing still sees
their spelling.

Usage::

    python scripts/make_corpus.py [--out DIR]

writes ``train.csv``, ``test.csv`` (columns ``text,tags,intent``) and
``README.md`` into DIR (default: the repository's data/), and the second, small
example: ``smart_home.md``, 60 smart-home commands (intents turn_on, turn_off,
set_level; slots room, device, level) in inline markup, as a person brings their own
data.  The output is byte-identical on every run.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

SEED = 20240611  # fixes the whole corpus
NUM_TRAIN = 3000  # utterances in train.csv
NUM_TEST = 600  # utterances in test.csv
TEST_HELD_OUT = 180  # test utterances that contain a held-out city or airline
OPTIONAL_P = 0.35  # probability that an optional "{?slot}" part is used

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data"

# The lecture's pair.  The bare sentences go to train; test gets them inside
# a longer sentence, because test may not repeat a train utterance.
LECTURE_TRAIN = [
    ("arrive taipei on november 2nd", "atis_flight"),
    ("leave taipei on november 2nd", "atis_flight"),
]
LECTURE_TEST = [
    ("i would like to arrive taipei on november 2nd", "atis_flight"),
    ("i would like to leave taipei on november 2nd", "atis_flight"),
]

# ---------------------------------------------------------------------------
# The world: names
# ---------------------------------------------------------------------------

CITIES = [
    "taipei", "kaohsiung", "taichung", "tokyo", "osaka", "seoul", "busan",
    "hong kong", "shanghai", "beijing", "singapore", "bangkok", "manila",
    "kuala lumpur", "jakarta", "hanoi", "ho chi minh city", "sydney",
    "melbourne", "auckland", "new delhi", "mumbai", "dubai", "doha",
    "istanbul", "london", "paris", "berlin", "frankfurt", "munich",
    "amsterdam", "brussels", "zurich", "geneva", "vienna", "prague", "rome",
    "milan", "madrid", "barcelona", "lisbon", "dublin", "edinburgh",
    "copenhagen", "stockholm", "oslo", "helsinki", "warsaw", "budapest",
    "athens", "cairo", "nairobi", "johannesburg", "cape town", "casablanca",
    "tel aviv", "new york", "los angeles", "san francisco", "chicago",
    "boston", "seattle", "denver", "dallas", "houston", "atlanta", "miami",
    "washington", "philadelphia", "phoenix", "las vegas", "san diego",
    "salt lake city", "minneapolis", "detroit", "milwaukee", "toronto",
    "vancouver", "montreal", "mexico city", "sao paulo", "rio de janeiro",
    "buenos aires", "lima", "bogota", "santiago", "honolulu", "anchorage",
    "orlando", "new orleans", "kansas city", "pittsburgh", "baltimore",
    "charlotte", "nashville", "portland", "oakland", "san jose",
    "fort worth", "calgary", "ottawa", "havana", "panama city", "cleveland",
    "cincinnati", "indianapolis",
]  # fmt: skip

# About 15 % of the cities occur only in the test split.  None of their words
# occurs in any name that train uses (except "city", which is generic).
HELD_OUT_CITIES = [
    "kaohsiung", "hanoi", "ho chi minh city", "auckland", "doha", "lisbon",
    "helsinki", "budapest", "nairobi", "casablanca", "salt lake city",
    "new orleans", "pittsburgh", "ottawa", "bogota", "buenos aires",
]  # fmt: skip

# (names used for the airline, two-letter code)
AIRLINES = [
    (["delta air lines", "delta", "delta airlines"], "dl"),
    (["united airlines", "united"], "ua"),
    (["american airlines", "american"], "aa"),
    (["continental airlines", "continental"], "co"),
    (["southwest airlines", "southwest"], "wn"),
    (["jetblue", "jetblue airways"], "b6"),
    (["china airlines"], "ci"),
    (["eva air"], "br"),
    (["japan airlines"], "jl"),
    (["all nippon airways", "ana"], "nh"),
    (["korean air"], "ke"),
    (["asiana airlines", "asiana"], "oz"),
    (["cathay pacific"], "cx"),
    (["singapore airlines"], "sq"),
    (["thai airways"], "tg"),
    (["qantas"], "qf"),
    (["emirates"], "ek"),
    (["qatar airways"], "qr"),
    (["turkish airlines"], "tk"),
    (["british airways"], "ba"),
    (["air france"], "af"),
    (["lufthansa"], "lh"),
    (["klm", "klm royal dutch airlines"], "kl"),
    (["swiss international air lines", "swiss"], "lx"),
    (["air canada"], "ac"),
    (["starlux airlines", "starlux"], "jx"),
    (["finnair"], "ay"),
    (["iberia"], "ib"),
    (["air new zealand"], "nz"),
]

HELD_OUT_AIRLINES = ["starlux airlines", "finnair", "iberia", "air new zealand"]

# (airport name, the city it serves)
AIRPORTS = [
    ("heathrow", "london"),
    ("gatwick", "london"),
    ("narita", "tokyo"),
    ("haneda", "tokyo"),
    ("changi", "singapore"),
    ("schiphol", "amsterdam"),
    ("charles de gaulle", "paris"),
    ("orly", "paris"),
    ("taoyuan international", "taipei"),
    ("songshan", "taipei"),
    ("incheon", "seoul"),
    ("kennedy", "new york"),
    ("la guardia", "new york"),
    ("newark", "new york"),
    ("logan", "boston"),
    ("midway", "chicago"),
    ("o hare", "chicago"),
    ("dulles", "washington"),
    ("love field", "dallas"),
    ("pearson", "toronto"),
    ("kansai international", "osaka"),
    ("chek lap kok", "hong kong"),
    ("general mitchell international", "milwaukee"),
    ("stapleton", "denver"),
]

MONTHS = [
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december",
]  # fmt: skip
MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
DAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
PERIODS = ["morning", "afternoon", "evening", "night"]
CLASSES = [
    "first class", "business class", "coach", "economy", "economy class",
    "premium economy", "business",
]  # fmt: skip
ROUND_TRIPS = ["round trip", "one way"]
COST_RELATIVE = ["cheapest", "lowest", "least expensive", "most expensive", "lowest cost"]
FARE_LIMITS = ["under", "less than", "below", "no more than"]
AIRCRAFT = [
    "737", "747", "757", "767", "777", "787", "a319", "a320", "a321",
    "a330", "a340", "a350", "a380", "md80", "dc10", "crj", "e190", "dash 8",
    "boeing 737", "airbus a320",
]  # fmt: skip
MEALS = ["breakfast", "lunch", "dinner", "snacks", "a snack", "a meal"]
TRANSPORT = ["taxi", "limousine", "rental car", "bus", "shuttle", "train", "car rental"]
FLIGHT_MODS = ["earliest", "latest", "first", "last"]
FLIGHT_STOPS = ["nonstop", "direct", "non stop"]
FARE_CODES = ["qx", "qo", "bh", "y", "f", "h", "m", "yn", "kn"]
RESTRICTIONS = ["ap 57", "ap 80", "ap 68", "s", "vu 1", "ap 2"]

ONES = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
TEENS = [
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
]  # fmt: skip


def ordinal_words(n: int) -> str:
    """Spell day ``n`` (1..31) as an ordinal: 22 -> "twenty second"."""
    if n < 10:
        return ONES[n - 1]
    if n < 20:
        return TEENS[n - 10]
    if n == 20:
        return "twentieth"
    if n < 30:
        return "twenty " + ONES[n - 21]
    if n == 30:
        return "thirtieth"
    return "thirty " + ONES[n - 31]


def ordinal_digits(n: int) -> str:
    """Write day ``n`` as digits plus suffix: 2 -> "2nd", 11 -> "11th"."""
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


# ---------------------------------------------------------------------------
# Fillers: each returns a list of (word, tag) pairs for one template slot
# ---------------------------------------------------------------------------

Pairs = list[tuple[str, str]]


class State:
    """What one utterance has used so far."""

    def __init__(self) -> None:
        self.cities: list[str] = []
        self.held_out = False


def ent(text: str, slot: str) -> Pairs:
    """Tag a (multi-word) value with B-slot, I-slot, ..."""
    words = text.split()
    return [(w, ("B-" if i == 0 else "I-") + slot) for i, w in enumerate(words)]


def lit(text: str) -> Pairs:
    """Words outside any slot."""
    return [(w, "O") for w in text.split()]


def pick_city(rng: random.Random, st: State) -> str:
    while True:
        city = rng.choice(CITIES)
        if city not in st.cities:
            break
    st.cities.append(city)
    if city in HELD_OUT_CITIES:
        st.held_out = True
    return city


def pick_airline(rng: random.Random, st: State) -> tuple[str, str]:
    names, code = rng.choice(AIRLINES)
    if names[0] in HELD_OUT_AIRLINES:
        st.held_out = True
    return rng.choice(names), code


def city_filler(slot: str) -> Callable[[random.Random, State], Pairs]:
    return lambda rng, st: ent(pick_city(rng, st), slot)


# Phrases after a noun ("flights leaving boston"); they agree with singular
# and plural nouns alike.
FROM_PHRASES = ["from", "from", "from", "out of", "leaving", "leaving from", "departing from",
                "departing"]  # fmt: skip
TO_PHRASES = ["to", "to", "to", "into", "arriving in", "landing in", "going to", "flying into",
              "bound for"]  # fmt: skip
# Phrases after a verb ("fly from boston").
FROM_VERB_PHRASES = ["from", "from", "from", "out of"]
TO_VERB_PHRASES = ["to", "to", "to", "into"]
STOP_PHRASES = ["with a stop in", "stopping in", "via", "connecting in", "with a layover in",
                "through", "with a stopover in"]  # fmt: skip


def place_phrase(phrases: list[str], slot: str) -> Callable[[random.Random, State], Pairs]:
    return lambda rng, st: lit(rng.choice(phrases)) + ent(pick_city(rng, st), slot)


def month_day(rng: random.Random, prefix: str) -> Pairs:
    """A month and an ordinal day: "november 2nd", "the 22nd of november"."""
    m = rng.randrange(12)
    d = rng.randint(1, MONTH_DAYS[m])
    day = ordinal_digits(d) if rng.random() < 0.5 else ordinal_words(d)
    month = ent(MONTHS[m], prefix + ".month_name")
    dayp = ent(day, prefix + ".day_number")
    form = rng.random()
    if form < 0.7:
        return month + dayp
    if form < 0.85:
        return month + lit("the") + dayp
    return lit("the") + dayp + lit("of") + month


def depart_month_day(rng: random.Random, st: State) -> Pairs:
    return month_day(rng, "depart_date")


def arrive_month_day(rng: random.Random, st: State) -> Pairs:
    return month_day(rng, "arrive_date")


def date_phrase(rng: random.Random, prefix: str, relative: bool) -> Pairs:
    """A date with its preposition: "on november 2nd", "next monday", "tomorrow"."""
    r = rng.random()
    day_name = ent(rng.choice(DAY_NAMES), prefix + ".day_name")
    if r < 0.5 or (not relative and r >= 0.78):
        return lit("on") + month_day(rng, prefix)
    if r < 0.7:
        return lit("on") + day_name
    if r < 0.78:
        return lit("on") + day_name + month_day(rng, prefix)
    rel = rng.random()
    slot = prefix + ".date_relative"
    if rel < 0.35:
        return ent("tomorrow", slot)
    if rel < 0.5:
        return ent("today", slot)
    if rel < 0.6:
        return lit("the") + ent("day after tomorrow", slot)
    if rel < 0.85:
        return ent("next", slot) + day_name
    return ent("this", slot) + day_name


def depart_date(rng: random.Random, st: State) -> Pairs:
    return date_phrase(rng, "depart_date", relative=True)


def arrive_date(rng: random.Random, st: State) -> Pairs:
    return date_phrase(rng, "arrive_date", relative=False)


def clock_time(rng: random.Random, slot: str) -> Pairs:
    """A clock time: "8 am", "830 pm", "noon"."""
    r = rng.random()
    if r < 0.08:
        return ent(rng.choice(["noon", "midnight"]), slot)
    h = rng.randint(1, 12)
    ampm = rng.choice(["am", "pm"])
    if r < 0.8:
        return ent(f"{h} {ampm}", slot)
    return ent(f"{h}{rng.choice(['00', '15', '30', '45'])} {ampm}", slot)


def time_phrase(rng: random.Random, prefix: str) -> Pairs:
    """A time with its preposition: "at 8 am", "before 5 pm", "in the morning"."""
    r = rng.random()
    if r < 0.3:
        return lit("at") + clock_time(rng, prefix + ".time")
    if r < 0.6:
        rel = rng.choice(["before", "after", "around", "by"])
        return ent(rel, prefix + ".time_relative") + clock_time(rng, prefix + ".time")
    period = rng.choice(PERIODS)
    if period == "night":
        return lit("at") + ent(period, prefix + ".period_of_day")
    return lit("in the") + ent(period, prefix + ".period_of_day")


def depart_time(rng: random.Random, st: State) -> Pairs:
    return time_phrase(rng, "depart_time")


def arrive_time(rng: random.Random, st: State) -> Pairs:
    return time_phrase(rng, "arrive_time")


def airline_name(rng: random.Random, st: State) -> Pairs:
    return ent(pick_airline(rng, st)[0], "airline_name")


def airline_code(rng: random.Random, st: State) -> Pairs:
    return ent(pick_airline(rng, st)[1], "airline_code")


def airport_name(rng: random.Random, st: State) -> Pairs:
    return ent(rng.choice(AIRPORTS)[0], "airport_name")


def airport_and_city(pre: list[str]) -> Callable[[random.Random, State], Pairs]:
    """An airport, then "to downtown CITY" (or ``pre``) of the city it serves."""

    def filler(rng: random.Random, st: State) -> Pairs:
        airport, city = rng.choice(AIRPORTS)
        st.cities.append(city)
        words = "airport " + rng.choice(pre)
        return ent(airport, "airport_name") + lit(words) + ent(city, "city_name")

    return filler


def choose(slot: str, values: list[str]) -> Callable[[random.Random, State], Pairs]:
    return lambda rng, st: ent(rng.choice(values), slot)


def words(options: list[str]) -> Callable[[random.Random, State], Pairs]:
    return lambda rng, st: lit(rng.choice(options))


def flight_number(rng: random.Random, st: State) -> Pairs:
    n = rng.choice([rng.randint(1, 99), rng.randint(100, 999), rng.randint(1000, 2999)])
    return ent(str(n), "flight_number")


def fare_phrase(rng: random.Random, st: State) -> Pairs:
    amount = rng.choice([rng.randrange(100, 1000, 50), rng.randrange(200, 2000, 100)])
    lead = lit(rng.choice(["", "", "for", "that cost"]))
    return (
        lead
        + ent(rng.choice(FARE_LIMITS), "cost_relative")
        + ent(f"{amount} dollars", "fare_amount")
    )


FILLERS: dict[str, Callable[[random.Random, State], Pairs]] = {
    "F": place_phrase(FROM_PHRASES, "fromloc.city_name"),
    "T": place_phrase(TO_PHRASES, "toloc.city_name"),
    "Fv": place_phrase(FROM_VERB_PHRASES, "fromloc.city_name"),
    "Tv": place_phrase(TO_VERB_PHRASES, "toloc.city_name"),
    "S": place_phrase(STOP_PHRASES, "stoploc.city_name"),
    "from": city_filler("fromloc.city_name"),
    "to": city_filler("toloc.city_name"),
    "stop": city_filler("stoploc.city_name"),
    "city": city_filler("city_name"),
    "ddate": depart_date,
    "adate": arrive_date,
    "dmd": depart_month_day,
    "amd": arrive_month_day,
    "dtime": depart_time,
    "atime": arrive_time,
    "dperiod": choose("depart_time.period_of_day", PERIODS),
    "airline": airline_name,
    "acode": airline_code,
    "airport": airport_name,
    "airport_to_city": airport_and_city(["to downtown", "to the center of", "into downtown"]),
    "airport_from_city": airport_and_city(["from downtown", "from the center of", "from"]),
    "class": choose("class_type", CLASSES),
    "rt": choose("round_trip", ROUND_TRIPS),
    "cost": choose("cost_relative", COST_RELATIVE),
    "fare": fare_phrase,
    "fnum": flight_number,
    "aircraft": choose("aircraft_code", AIRCRAFT),
    "meal": choose("meal", MEALS),
    "transport": choose("transport_type", TRANSPORT),
    "fmod": choose("flight_mod", FLIGHT_MODS),
    "stopkw": choose("flight_stop", FLIGHT_STOPS),
    "fbc": choose("fare_basis_code", FARE_CODES),
    "rc": choose("restriction_code", RESTRICTIONS),
    # words outside any slot
    "show": words(
        [
            "show me",
            "list",
            "give me",
            "i need",
            "find",
            "please show me",
            "can you show me",
            "what are the",
            "i would like to see",
            "display",
            "find me",
            "show me all",
        ]
    ),  # fmt: skip
    "showone": words(
        [
            "show me",
            "list",
            "give me",
            "i need",
            "find me",
            "what is",
            "please show me",
            "i would like",
        ]
    ),  # fmt: skip
    "want": words(
        [
            "i want to",
            "i would like to",
            "i need to",
            "i plan to",
            "i have to",
            "i wish to",
            "i am trying to",
            "can i",
        ]
    ),  # fmt: skip
    "please": words(["please", "hi", "hello", "ok", "yes"]),
    "go": words(["go", "fly", "travel", "leave"]),
    "fly": words(["fly", "go", "travel"]),
}

# ---------------------------------------------------------------------------
# Templates per intent.  "{name}" is a filler, "{?name}" an optional one,
# "a/an" an article that agrees with the next word, everything else is a
# literal word tagged O.
# ---------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "atis_flight": [
        "{?please} {show} flights {F} {T}",
        "{show} flights {T} {F}",
        "{show} flights {F} {T} {ddate}",
        "{show} flights {T} {F} {ddate} {?dtime}",
        "{show} {stopkw} flights {F} {T} {?ddate}",
        "{want} fly {Fv} {Tv} {ddate}",
        "{want} fly {Tv} {Fv} {?ddate}",
        "{want} book a flight {F} {T} {ddate} {?dtime}",
        "{want} go {Fv} {Tv} {?ddate}",
        "{want} go to {to} {ddate}",
        "i need a {rt} ticket {Fv} {Tv} {?ddate}",
        "{show} {class} flights {F} {T} {?ddate}",
        "{show} {airline} flights {F} {T} {?ddate}",
        "{show} flights on {airline} {F} {T} {ddate}",
        "what flights are available {F} {T} {ddate}",
        "what flights {go} {Fv} {Tv} {ddate} {?dtime}",
        "{show} {dperiod} flights {F} {T} {?ddate}",
        "{show} flights {F} {T} arriving {atime}",
        "{show} flights {F} {T} that arrive {adate} {?atime}",
        "{show} flights {F} {T} {dtime}",
        "{show} flights {F} {T} {ddate} {dtime}",
        "{showone} the {fmod} flight {F} {T} {?ddate}",
        "{show} flights {F} {T} {S}",
        "{show} flights {F} {S} {T} {?ddate}",
        "are there any {stopkw} flights {F} {T} {?ddate}",
        "is there a flight {F} {T} {ddate} {?dtime}",
        "{show} flights {F} {T} on {acode}",
        "{show} {acode} flights {F} {T} {?ddate}",
        "{showone} the {cost} flight {F} {T} {?ddate}",
        "{show} flights {F} {T} {fare}",
        "arrive {to} on {amd}",
        "leave {from} on {dmd}",
        "{want} arrive {to} on {amd}",
        "{want} leave {from} on {dmd}",
        "arrive in {to} on {amd}",
        "leave {from} on {dmd} and arrive {to} on {amd}",
        "{want} leave {from} on {dmd} and arrive in {to} on {amd}",
        "{want} leave {from} on {dmd} to go to {to}",
        "{want} arrive in {to} on {amd} coming from {from}",
        "{want} arrive {to} on {amd} {atime}",
        "{want} leave {from} on {dmd} {dtime}",
        "{from} to {to} {ddate}",
        "{from} to {to} {?dtime}",
        "flights {T} {ddate}",
        "flights {F} {ddate} {?dtime}",
        "{show} {rt} flights {F} {T}",
        "{show} {rt} {class} flights {F} {T} {?ddate}",
        "{want} take a {stopkw} flight {F} {T} {ddate}",
        "what {airline} flights {go} {Fv} {Tv}",
        "{acode} flights {F} {T} {ddate}",
        "{show} flights {F} {T} {ddate} that serve {meal}",
        "{show} flights {F} {T} that serve {meal}",
        "{show} flights {F} {T} on a/an {aircraft}",
        "do you have any {dperiod} flights {F} {T}",
        "{showone} flight {fnum} {F} {T}",
        "which flights depart from {from} {ddate} {dtime} and arrive in {to} {atime}",
        "{show} flights that leave {from} {dtime} and arrive in {to} {atime}",
        "i would like to travel {Fv} {Tv} {ddate}",
        "get me a flight {F} {T} {ddate} {?dtime}",
        "i am leaving {from} {ddate} and going to {to}",
        "i am arriving in {to} {adate} {Fv}",
        "{show} flights {T} {F} that arrive {adate}",
        "which flights {F} land in {to} {adate} {?atime}",
        "list {stopkw} flights {F} {T} {ddate}",
        "i need to be in {to} {adate} {?atime} {Fv}",
        "{want} get to {to} {atime} {adate}",
        "{want} depart from {from} {ddate} {?dtime}",
        "flying out of {from} {ddate} {T}",
        "{showone} {airline} flight {fnum} {F} {T}",
        "{showone} {acode} flight {fnum}",
        "{showone} the {fmod} {airline} flight {F} {T} {ddate}",
        "{show} flights {F} {T} {S} {ddate}",
        "book me on the {fmod} flight {F} {T} {ddate}",
        "what is the {fmod} flight {T} {F}",
        "is there a/an {class} flight {F} {T} {?ddate}",
        "i need to fly {Tv} {ddate} {dtime}",
        "{want} land in {to} {adate} {atime}",
        "what flights leave {from} {ddate} {dtime}",
        "which flights arrive in {to} {adate} {atime}",
    ],
    "atis_airfare": [
        "what is the {cost} fare {Fv} {Tv}",
        "how much is a/an {class} ticket {Fv} {Tv} {?ddate}",
        "how much does it cost to fly {Fv} {Tv} {?ddate}",
        "{show} {rt} fares {Fv} {Tv}",
        "what are the fares for flights {F} {T} {ddate}",
        "{showone} the {cost} {rt} fare {Fv} {Tv} on {airline}",
        "what is the price of a {rt} {class} ticket {Fv} {Tv}",
        "{show} fares {Fv} {Tv} {fare}",
        "how much is flight {fnum} {F} {T}",
        "what does a/an {class} ticket on {airline} cost {Fv} {Tv}",
        "{cost} airfare {Fv} {Tv} {?ddate}",
        "what is the {rt} fare {Tv} {Fv}",
        "how much is a {rt} ticket {Tv} {?ddate}",
        "fare information {Fv} {Tv} {?ddate}",
    ],
    "atis_airline": [
        "which airlines fly {Fv} {Tv}",
        "what airlines have flights {F} {T} {?ddate}",
        "what airline is flight {fnum}",
        "which airline flies {stopkw} {Fv} {Tv}",
        "what airlines serve {city}",
        "{show} airlines with flights {T} {?F}",
        "which airline has the {cost} fare {Fv} {Tv}",
        "what airlines fly into {to}",
        "which airlines have {class} service {Fv} {Tv}",
    ],
    "atis_ground_service": [
        "what ground transportation is available in {city}",
        "{show} ground transportation in {city}",
        "is there a {transport} service in {city}",
        "how do i get from {airport_to_city}",
        "what {transport} service is available at {airport}",
        "i need a {transport} from {airport_to_city}",
        "what kind of ground transportation is there at {airport}",
        "is there {transport} service at {airport} airport",
        "ground transportation {city}",
        "how can i get downtown from {airport} airport",
    ],
    "atis_flight_time": [
        "what time does flight {fnum} leave {from}",
        "what are the departure times {Fv} {Tv} {?ddate}",
        "when does the {fmod} flight {F} {T} leave",
        "what time does {airline} flight {fnum} arrive in {to}",
        "{show} arrival times for flights {F} {T}",
        "what time do flights leave {from} for {to}",
        "when does flight {fnum} arrive",
        "what are the flight times {Fv} {Tv} {ddate}",
    ],
    "atis_abbreviation": [
        "what does {acode} mean",
        "what does {acode} stand for",
        "what is airline code {acode}",
        "explain the airline code {acode}",
        "what does fare code {fbc} mean",
        "what is fare code {fbc}",
        "what does the fare basis code {fbc} mean",
        "what does restriction {rc} mean",
        "what is restriction {rc}",
        "explain restriction {rc}",
    ],
    "atis_aircraft": [
        "what type of aircraft is used on flight {fnum}",
        "what kind of plane flies {Fv} {Tv}",
        "what aircraft does {airline} use {Fv} {Tv}",
        "which planes fly {Fv} {Tv} {ddate}",
        "what kind of airplane is {airline} flight {fnum}",
        "what is a/an {aircraft}",
        "what type of aircraft flies {Fv} {Tv} {?dtime}",
    ],
    "atis_meal": [
        "what meals are served on flight {fnum}",
        "is {meal} served on the flight {F} {T}",
        "what is served for {meal} on {airline} flight {fnum}",
        "does flight {fnum} {F} {T} serve {meal}",
        "which meals does {airline} offer {Fv} {Tv}",
        "do they serve {meal} on the {fmod} flight {F} {T}",
    ],
    "atis_quantity": [
        "how many flights does {airline} have {Fv} {Tv}",
        "how many {class} flights go {Fv} {Tv} {?ddate}",
        "how many flights {F} {T} are there {ddate}",
        "how many {stopkw} flights go {Fv} {Tv}",
        "how many airlines fly {Tv}",
        "how many flights does {airline} have {ddate}",
    ],
    "atis_distance": [
        "how far is {airport_from_city}",
        "what is the distance from {airport_to_city}",
        "how far is it {Fv} {Tv}",
        "how many miles is it {Fv} {Tv}",
        "what is the distance {Fv} {Tv}",
    ],
    "atis_capacity": [
        "how many seats are there on a/an {aircraft}",
        "what is the seating capacity of a/an {aircraft}",
        "how many people can a/an {aircraft} hold",
        "how many passengers fit on a/an {aircraft}",
        "what is the capacity of the {aircraft}",
        "how many seats does a/an {aircraft} have",
        "seating capacity of {airline} {aircraft}",
    ],
    "atis_city": [
        "what cities does {airline} serve",
        "which city is {airport} airport in",
        "what cities does {airline} fly to {Fv}",
        "in which city is the {airport} airport",
        "list the cities served by {airline}",
        "where is {airport} airport",
    ],
}

# Relative frequency of the intents (skewed like ATIS: mostly flights).
INTENT_WEIGHTS = {
    "atis_flight": 60,
    "atis_airfare": 10,
    "atis_ground_service": 6,
    "atis_airline": 5,
    "atis_abbreviation": 4,
    "atis_flight_time": 3,
    "atis_aircraft": 3,
    "atis_quantity": 2.5,
    "atis_meal": 2,
    "atis_distance": 1.5,
    "atis_capacity": 1.5,
    "atis_city": 1.5,
}


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def fill(template: str, rng: random.Random) -> tuple[str, str, bool]:
    """Fill one template: (text, tags, uses a held-out name)."""
    st = State()
    pairs: Pairs = []
    for part in template.split():
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.startswith("?"):
                name = name[1:]
                if rng.random() >= OPTIONAL_P:
                    continue
            pairs.extend(FILLERS[name](rng, st))
        else:
            pairs.extend(lit(part))
    for i, (word, tag) in enumerate(pairs):
        if word == "a/an":  # the article agrees with the word after it
            nxt = pairs[i + 1][0]
            pairs[i] = ("an" if nxt[0] in "aeiou" or nxt == "md80" else "a", tag)
    text = " ".join(w for w, _ in pairs)
    tags = " ".join(t for _, t in pairs)
    return text, tags, st.held_out


def generate(seed: int = SEED) -> tuple[list[list[str]], list[list[str]]]:
    """Return (train rows, test rows); a row is [text, tags, intent]."""
    rng = random.Random(seed)
    intents = list(INTENT_WEIGHTS)
    weights = [INTENT_WEIGHTS[i] for i in intents]

    def lecture_row(text: str, intent: str) -> list[str]:
        prefix = "arrive_date" if " arrive " in f" {text} " else "depart_date"
        loc = "toloc" if prefix == "arrive_date" else "fromloc"
        tags = {
            "taipei": f"B-{loc}.city_name",
            "november": f"B-{prefix}.month_name",
            "2nd": f"B-{prefix}.day_number",
        }
        return [text, " ".join(tags.get(w, "O") for w in text.split()), intent]

    pinned_train = [lecture_row(t, i) for t, i in LECTURE_TRAIN]
    pinned_test = [lecture_row(t, i) for t, i in LECTURE_TEST]
    seen_texts = {row[0] for row in pinned_train + pinned_test}

    n_seen_test = NUM_TEST - TEST_HELD_OUT - len(pinned_test)
    n_seen = NUM_TRAIN - len(pinned_train) + n_seen_test
    seen_pool: list[list[str]] = []
    held_pool: list[list[str]] = []
    for _ in range(200_000):
        if len(seen_pool) >= n_seen and len(held_pool) >= TEST_HELD_OUT:
            break
        intent = rng.choices(intents, weights)[0]
        template = rng.choice(TEMPLATES[intent])
        text, tags, held_out = fill(template, rng)
        if text in seen_texts:
            continue
        seen_texts.add(text)
        pool = held_pool if held_out else seen_pool
        pool.append([text, tags, intent])
    else:  # pragma: no cover - the templates are varied enough
        raise RuntimeError("could not generate enough distinct utterances")

    seen_pool = seen_pool[:n_seen]
    held_pool = held_pool[:TEST_HELD_OUT]
    rng.shuffle(seen_pool)
    test = seen_pool[:n_seen_test] + held_pool + pinned_test
    train = seen_pool[n_seen_test:] + pinned_train
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "tags", "intent"])
        writer.writerows(rows)


def slot_counts(rows: list[list[str]]) -> Counter:
    """Number of slot values (B- tags) per slot type."""
    counts: Counter = Counter()
    for _, tags, _ in rows:
        for tag in tags.split():
            if tag.startswith("B-"):
                counts[tag[2:]] += 1
    return counts


def readme(train: list[list[str]], test: list[list[str]]) -> str:
    intents_tr = Counter(r[2] for r in train)
    intents_te = Counter(r[2] for r in test)
    slots_tr = slot_counts(train)
    slots_te = slot_counts(test)
    n_tok_tr = sum(len(r[0].split()) for r in train)
    n_tok_te = sum(len(r[0].split()) for r in test)
    n_templates = sum(len(v) for v in TEMPLATES.values())
    lines = [
        "# Bundled travel-booking corpus",
        "",
        "A small slot-filling corpus for flight booking, generated by",
        "`scripts/make_corpus.py` from hand-written templates (written from scratch,",
        "not taken from ATIS or any public corpus). Slot names and intents follow the",
        "ATIS conventions, so models trained here and on ATIS use the same labels.",
        "",
        "Regenerate it (deterministic, byte-identical output, no network) with:",
        "",
        "```",
        "python scripts/make_corpus.py            # writes data/",
        "python scripts/make_corpus.py --out DIR  # writes somewhere else",
        "```",
        "",
        "## Files",
        "",
        "- `train.csv`, `test.csv`: utterance CSV with header `text,tags,intent`;",
        "  `text` is lower-case tokens separated by single spaces, `tags` one BIO tag",
        "  per token, `intent` one intent label.",
        "",
        "| split | utterances | tokens |",
        "|-------|-----------:|-------:|",
        f"| train | {len(train)} | {n_tok_tr} |",
        f"| test | {len(test)} | {n_tok_te} |",
        "",
        "## How it was made",
        "",
        f"- {n_templates} templates over {len(TEMPLATES)} intents, filled by"
        f" `random.Random({SEED})`",
        f"  from {len(CITIES)} cities, {len(AIRLINES)} airlines and {len(AIRPORTS)} airports,"
        " with dates",
        '  ("november 2nd", "the twenty second of may", "next friday", "tomorrow"),',
        '  times ("8 am", "before 530 pm", "in the evening"), classes, fares, flight',
        "  numbers, aircraft and meals.",
        '- Context decides departure versus arrival: "leave X", "from X", "out of X"',
        '  give `fromloc`; "arrive X", "to X", "into X", "landing in X" give `toloc`.',
        '  A family "leave/arrive CITY on MONTH DAY" is modelled on the lecture, so',
        "  only the verb tells the slot.",
        "- The lecture's pair is in both splits: train holds",
        '  "arrive taipei on november 2nd" and "leave taipei on november 2nd";',
        '  test holds the same inside "i would like to ...".',
        "- Utterances are generated, de-duplicated by text, then split; no test",
        "  utterance repeats a train utterance.",
        f"- Held-out names: these occur only in test ({TEST_HELD_OUT} test utterances",
        "  use one of them, mixed with seen names), so a 1-of-N lexicon maps them to",
        '  its "Other" bucket while letter-trigram hashing still sees their spelling.',
        f"  - cities: {', '.join(HELD_OUT_CITIES)}",
        f"  - airlines: {', '.join(HELD_OUT_AIRLINES)}",
        "",
        "## Intents",
        "",
        "| intent | train | test |",
        "|--------|------:|-----:|",
    ]
    for intent in sorted(intents_tr | intents_te, key=lambda i: (-intents_tr[i], i)):
        lines.append(f"| {intent} | {intents_tr[intent]} | {intents_te[intent]} |")
    lines += [
        "",
        f"## Slots ({len(slots_tr | slots_te)} types; counts are slot values, i.e. B- tags)",
        "",
        "| slot | train | test |",
        "|------|------:|-----:|",
    ]
    for slot in sorted(slots_tr | slots_te, key=lambda s: (-slots_tr[s], s)):
        lines.append(f"| {slot} | {slots_tr[slot]} | {slots_te[slot]} |")
    lines += [
        "",
        "## The second example: smart_home.md",
        "",
        f"{len(SMART_HOME_TEMPLATES) * SMART_HOME_PER_INTENT} smart-home commands in inline",
        "markup (Rasa's NLU Markdown), as a person writes their own first data:",
        f"{SMART_HOME_PER_INTENT} for each of the intents {', '.join(SMART_HOME_TEMPLATES)},",
        "slots `room`, `device` and `level`, typed with capitals and marks",
        '("Turn the [lamp](device) on, please!"). `python train.py --train',
        "data/smart_home.md` trains on it (the README's smart-home example).",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The second example: smart-home commands in inline markup (data/smart_home.md)
# ---------------------------------------------------------------------------

SMART_HOME_SEED = 20250301
SMART_HOME_PER_INTENT = 20
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "office", "hallway", "garage"]
DEVICES = ["lights", "lamp", "fan", "heater", "TV", "speaker", "air conditioner", "blinds"]
LEVELS = ["20%", "50 percent", "75%", "21 degrees", "low", "half", "maximum", "level 3"]
# Typed as people type commands: capitals, commas, question marks, "please!".
SMART_HOME_TEMPLATES = {
    "turn_on": [
        "turn on the {room} {device}",
        "Switch on the {device} in the {room}",
        "Turn the {device} on, please!",
        "can you turn on the {room} {device}?",
        "{device} on in the {room}",
        "Please switch the {room} {device} on.",
    ],
    "turn_off": [
        "turn off the {room} {device}",
        "Switch off the {device} in the {room}",
        "Turn the {device} off, please!",
        "could you shut off the {room} {device}?",
        "{device} off in the {room}",
        "Kill the {device}.",
    ],
    "set_level": [
        "set the {room} {device} to {level}",
        "Dim the {device} in the {room} to {level}, please",
        "turn the {device} up to {level}",
        "can you put the {room} {device} at {level}?",
        "{device} to {level}",
        "Set the {device} in the {room} to {level}.",
    ],
}


def smart_home(seed: int = SMART_HOME_SEED) -> list[tuple[str, str]]:
    """(intent, utterance in inline markup) of the smart-home example: the same
    number of distinct utterances per intent, each a template filled at random."""
    rng = random.Random(seed)
    out = []
    for intent, templates in SMART_HOME_TEMPLATES.items():
        seen: set[str] = set()
        while len(seen) < SMART_HOME_PER_INTENT:
            template = rng.choice(templates)
            line = template.format(
                room=f"[{rng.choice(ROOMS)}](room)",
                device=f"[{rng.choice(DEVICES)}](device)",
                level=f"[{rng.choice(LEVELS)}](level)",
            )
            if line not in seen:
                seen.add(line)
                out.append((intent, line))
    return out


def smart_home_markdown(examples: list[tuple[str, str]]) -> str:
    """Rasa's NLU Markdown: one `## intent:` section per intent, one utterance an item."""
    lines = [
        "# Smart-home commands (generated by scripts/make_corpus.py; slots room, device, level)",
        "",
    ]
    for intent in SMART_HOME_TEMPLATES:
        lines.append(f"## intent:{intent}")
        lines += [f"- {line}" for name, line in examples if name == intent]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    train, test = generate()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "train.csv", train)
    write_csv(args.out / "test.csv", test)
    (args.out / "README.md").write_text(readme(train, test), encoding="utf-8", newline="\n")
    print(f"wrote {len(train)} train and {len(test)} test utterances to {args.out}")
    home = smart_home()
    markdown = smart_home_markdown(home)
    (args.out / "smart_home.md").write_text(markdown, encoding="utf-8", newline="\n")
    print(f"wrote {len(home)} smart-home utterances to {args.out / 'smart_home.md'}")


if __name__ == "__main__":
    main()
