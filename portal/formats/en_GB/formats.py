# Every time the portal shows names its zone ("T": UTC, CET, ...): staff and the vendor may be
# in different ones.
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "Y-m-d"
