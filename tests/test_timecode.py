import math
import random
from fractions import Fraction

import pytest

from scenegrep.pipeline.timecode import Timecode, parse_rate

NTSC24, NTSC30, NTSC60 = Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)

# (rate, nominal fps, frames dropped per minute)
RATES = [
    (NTSC24, 24, 0),
    (Fraction(24), 24, 0),
    (Fraction(25), 25, 0),
    (NTSC30, 30, 2),
    (Fraction(30), 30, 0),
    (NTSC60, 60, 4),
    (Fraction(60), 60, 0),
]
RATE_IDS = ["23.976", "24", "25", "29.97df", "30", "59.94df", "60"]


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("bad", [-0.001, -1, float("nan"), float("inf")])
def test_constructor_rejects_bad_seconds(bad):
    with pytest.raises(ValueError):
        Timecode(bad)


def test_constructor_rejects_text():
    with pytest.raises(TypeError):
        Timecode("90")


def test_int_is_stored_as_float_and_ordering():
    assert Timecode(3).seconds == 3.0 and isinstance(Timecode(3).seconds, float)
    assert Timecode(1) < Timecode(1.5) <= Timecode(1.5)
    assert sorted([Timecode(3), Timecode(0), Timecode(2)]) == [Timecode(0), Timecode(2), Timecode(3)]
    assert len({Timecode(1), Timecode(1.0)}) == 1


# ----------------------------------------------------------------------- HMS
@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "00:00:00.000"),
        (90.5, "00:01:30.500"),
        (3723.004, "01:02:03.004"),
        (59.9996, "00:01:00.000"),  # carry seconds -> minutes
        (59.9994, "00:00:59.999"),
        (3599.9999, "01:00:00.000"),  # carry all the way into hours
        (0.0004, "00:00:00.000"),
        (0.0006, "00:00:00.001"),
        (100 * 3600 + 1.25, "100:00:01.250"),  # hours past 99
    ],
)
def test_to_hms(seconds, text):
    assert Timecode(seconds).to_hms() == text
    assert str(Timecode(seconds)) == text


def test_hms_round_trips_through_parse():
    for ms in range(0, 3_700_000, 7919):
        tc = Timecode(ms / 1000)
        assert Timecode.parse(tc.to_hms()).to_hms() == tc.to_hms()


# --------------------------------------------------------------------- parse
@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90", 90),
        ("90.5", 90.5),
        ("0", 0),
        (".5", 0.5),
        ("  90 ", 90),
        ("1:30", 90),
        ("0:05", 5),
        ("1:5", 65),
        ("1:02:03", 3723),
        ("00:01:30.5", 90.5),
        ("00:01:30.500", 90.5),
        ("00:01:30,500", 90.5),  # SRT style
        ("1:30.25", 90.25),
        ("100:00:00", 360000),
        ("1m30s", 90),
        ("2h", 7200),
        ("45s", 45),
        ("90m", 5400),
        ("1h2m3s", 3723),
        ("1h 2m 3.5s", 3723.5),
        ("1H30M", 5400),
        ("1.5h", 5400),
    ],
)
def test_parse_accepts(text, seconds):
    assert Timecode.parse(text) == Timecode(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "abc", "-5", "-1:30", "1:70", "1:60", "60:00", "1:60:00", "1:02:60",
        "1:30:", ":30", "1::30", "1:2:3:4", "1:30.", "1.5:30", "nan", "inf", "1e3",
        "1m30", "30ss", "1s2m", "h", "ms", "500ms", "1 30", "1:30 x", "１:３０",
    ],
)
def test_parse_rejects(text):
    with pytest.raises(ValueError) as info:
        Timecode.parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert "expected" in message and "MM:SS" in message


def test_parse_error_message_example():
    with pytest.raises(ValueError, match=r"^invalid time '1:70': expected seconds \(90\), MM:SS \(1:30\)"):
        Timecode.parse("1:70")


def test_parse_rejects_non_str():
    with pytest.raises(TypeError):
        Timecode.parse(90)


# ---------------------------------------------------------------- parse_rate
@pytest.mark.parametrize(
    "rate, expected",
    [
        ("30000/1001", NTSC30),
        (" 24000/1001 ", NTSC24),
        ("29.97", NTSC30),
        (29.97, NTSC30),
        (23.976, NTSC24),
        ("23.976", NTSC24),
        (23.98, NTSC24),
        (59.94, NTSC60),
        ("59.94", NTSC60),
        (29.97002997002997, NTSC30),
        (NTSC30, NTSC30),
        (25, Fraction(25)),
        ("25", Fraction(25)),
        (30.0, Fraction(30)),
        (24.0, Fraction(24)),
        (Fraction(24), Fraction(24)),
        (12.5, Fraction(25, 2)),
        ("2997/100", Fraction(2997, 100)),  # explicit ratios are exact, not snapped
        (Fraction(2997, 100), Fraction(2997, 100)),
    ],
)
def test_parse_rate(rate, expected):
    result = parse_rate(rate)
    assert isinstance(result, Fraction)
    assert result == expected


@pytest.mark.parametrize("bad", [0, -25, 0.0, "0", "-29.97", "abc", "", "1/0", "30/", float("nan"), float("inf")])
def test_parse_rate_rejects_values(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


@pytest.mark.parametrize("bad", [None, True, [30], b"30"])
def test_parse_rate_rejects_types(bad):
    with pytest.raises(TypeError):
        parse_rate(bad)


# -------------------------------------------------------------------- frames
@pytest.mark.parametrize("rate", [r for r, _, _ in RATES], ids=RATE_IDS)
def test_frames_round_trip(rate):
    for n in list(range(0, 5000)) + list(range(10**7, 10**7 + 500)):
        assert Timecode.from_frames(n, rate).frames(rate) == n


def test_frames_rounds_to_nearest():
    assert Timecode(1.0).frames(25) == 25
    assert Timecode(1.019).frames(25) == 25
    assert Timecode(1.021).frames(25) == 26
    assert Timecode(1.0).frames("30000/1001") == 30  # 29.97
    assert Timecode(0.5 / 25).frames(25) == 1  # exact half rounds up (0.02 is a hair above)
    assert Timecode(0.5).frames(3) == 2  # 1.5 exactly -> up


def test_from_frames_rejects():
    with pytest.raises(ValueError):
        Timecode.from_frames(-1, 25)
    with pytest.raises(TypeError):
        Timecode.from_frames(1.5, 25)


# --------------------------------------------------------------------- SMPTE
def _odometer(nominal, drop, count):
    """Independent reference: label sequence produced by ticking a SMPTE counter."""
    hh = mm = ss = ff = 0
    for _ in range(count):
        yield (hh, mm, ss, ff)
        ff += 1
        if ff == nominal:
            ff, ss = 0, ss + 1
            if ss == 60:
                ss, mm = 0, mm + 1
                if mm == 60:
                    mm, hh = 0, hh + 1
                if drop and mm % 10:
                    ff = drop


def _label(hh, mm, ss, ff, drop):
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


@pytest.mark.parametrize("rate, nominal, drop", RATES, ids=RATE_IDS)
def test_smpte_matches_reference_counter_across_minute_and_ten_minute_boundaries(rate, nominal, drop):
    # Tick through 11.5 labelled minutes (every minute boundary and the 10-minute
    # one); check every frame of minutes 0, 9 and 10 and +-2 s around each boundary.
    count = nominal * 60 * 11 + nominal * 30
    for n, fields in enumerate(_odometer(nominal, drop, count)):
        _, mm, ss, _ = fields
        if mm not in (0, 9, 10) and 2 <= ss < 58:
            continue
        text = Timecode.from_frames(n, rate).to_smpte(rate)
        assert text == _label(*fields, drop), n
        assert Timecode.from_smpte(text, rate).frames(rate) == n


@pytest.mark.parametrize("rate, nominal, drop", RATES, ids=RATE_IDS)
def test_smpte_frames_round_trip_near_one_hour(rate, nominal, drop):
    one_hour = 3600 * nominal - drop * 54  # 54 dropping minutes per hour
    for n in range(one_hour - 20 * nominal, one_hour + 20 * nominal):
        text = Timecode.from_frames(n, rate).to_smpte(rate)
        assert Timecode.from_smpte(text, rate).frames(rate) == n
    assert Timecode.from_frames(one_hour, rate).to_smpte(rate) == _label(1, 0, 0, 0, drop)


@pytest.mark.parametrize("rate, nominal, drop", RATES, ids=RATE_IDS)
def test_smpte_seconds_round_trip_within_half_frame(rate, nominal, drop):
    rng = random.Random(1234)
    half_frame = 0.5 / float(rate)
    for _ in range(3000):
        seconds = rng.uniform(0, 2 * 3600)
        back = Timecode.from_smpte(Timecode(seconds).to_smpte(rate), rate)
        assert abs(back.seconds - seconds) <= half_frame + 1e-9


@pytest.mark.parametrize(
    "rate, frame, text",
    [
        (NTSC30, 0, "00:00:00;00"),
        (NTSC30, 1799, "00:00:59;29"),
        (NTSC30, 1800, "00:01:00;02"),
        (NTSC30, 3598, "00:02:00;02"),
        (NTSC30, 17981, "00:09:59;29"),
        (NTSC30, 17982, "00:10:00;00"),
        (NTSC30, 17983, "00:10:00;01"),
        (NTSC30, 19782, "00:11:00;02"),
        (NTSC30, 107892, "01:00:00;00"),
        (NTSC60, 3599, "00:00:59;59"),
        (NTSC60, 3600, "00:01:00;04"),
        (NTSC60, 35964, "00:10:00;00"),
        (NTSC60, 215784, "01:00:00;00"),
        (NTSC24, 1440, "00:01:00:00"),
        (NTSC24, 14400, "00:10:00:00"),
        (NTSC24, 86400, "01:00:00:00"),
        (Fraction(25), 90000, "01:00:00:00"),
        (Fraction(30), 1800, "00:01:00:00"),
        (Fraction(60), 3600, "00:01:00:00"),
    ],
)
def test_smpte_known_values(rate, frame, text):
    assert Timecode.from_frames(frame, rate).to_smpte(rate) == text
    assert Timecode.from_smpte(text, rate).frames(rate) == frame


def test_smpte_rate_forms_and_drop_frame_override():
    tc = Timecode.from_frames(1800, NTSC30)
    assert tc.to_smpte("30000/1001") == tc.to_smpte(29.97) == tc.to_smpte("29.97") == "00:01:00;02"
    assert tc.to_smpte(NTSC30, drop_frame=False) == "00:01:00:00"
    assert Timecode.from_smpte("00:01:00:00", NTSC30).frames(NTSC30) == 1800
    # Drop-frame counting forced at integer 30 fps still round-trips.
    assert Timecode(60).to_smpte(30, drop_frame=True) == "00:01:00;02"
    assert Timecode.from_smpte("00:01:00;02", 30) == Timecode(60)
    # Hours are not wrapped at 24.
    assert Timecode(25 * 3600).to_smpte(25) == "25:00:00:00"


@pytest.mark.parametrize(
    "text, rate",
    [
        ("00:01:00;00", NTSC30),  # dropped label
        ("00:01:00;01", NTSC30),
        ("00:01:00;03", NTSC60),
        ("00:00:00:30", 30),  # frame field out of range
        ("00:00:00:24", NTSC24),
        ("00:60:00:00", 25),
        ("00:00:60:00", 25),
        ("00:00:00;00", 25),  # drop-frame makes no sense at 25
        ("1:30", 25),
        ("00:00:00", 25),
        ("00-00-00-00", 25),
        ("", 25),
    ],
)
def test_from_smpte_rejects(text, rate):
    with pytest.raises(ValueError):
        Timecode.from_smpte(text, rate)


def test_to_smpte_drop_frame_at_25_rejected():
    with pytest.raises(ValueError):
        Timecode(1).to_smpte(25, drop_frame=True)


# ---------------------------------------------------------------- arithmetic
def test_arithmetic():
    a, b = Timecode(10.5), Timecode(2.25)
    assert a + b == Timecode(12.75)
    assert a + 1 == Timecode(11.5)
    assert 1 + a == Timecode(11.5)
    assert sum([a, b, Timecode(1)]) == Timecode(13.75)
    assert a - b == Timecode(8.25)
    assert a - 0.5 == Timecode(10.0)
    assert b - a == Timecode(0)  # clamped
    assert a - 100 == Timecode(0)
    assert a + (-100) == Timecode(0)
    assert isinstance(a + b, Timecode)
    assert float(a) == 10.5
    assert math.isclose(float(Timecode.parse("1:30") + 0.5), 90.5)


def test_arithmetic_rejects_other_types():
    with pytest.raises(TypeError):
        Timecode(1) + "2"
    with pytest.raises(TypeError):
        Timecode(1) - "2"


@pytest.mark.parametrize("rate, text", [
    (Fraction(25), "25"),
    (Fraction(30000, 1001), "30000/1001"),
    (Fraction(14985, 500), "30000/1001"),  # a muxer's 29.97: NTSC
    (Fraction(25, 2), "12.5"),
    (Fraction(400, 407), "0.983"),  # a variable-frame-rate average
    (Fraction(3102357836338419, 200000000000000), "15.512"),  # the same after a float
    (Fraction(100, 3), "33.333"),
])
def test_frame_rates_read_as_people_write_them(rate, text):
    from scenegrep.pipeline.timecode import rate_text, readable_rate

    assert rate_text(rate) == text
    assert Fraction(text) == readable_rate(rate)
