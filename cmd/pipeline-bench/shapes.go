package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// A shape appends one JSON message with fresh random readings.
type shape func(b []byte, rng *rand.Rand) []byte

func shapeByName(name string) (shape, error) {
	switch name {
	case "guide":
		return guideMessage, nil
	case "nested":
		return nestedMessage, nil
	}
	return nil, fmt.Errorf("unknown shape %q (want guide or nested)", name)
}

// guideMessage is the guide's sensor reading as Python's json.dumps writes
// it, the same form cmd/oceanic-producer sends:
//
//	{"pressure": 4.2, "temperature": 52.2, "visibility": 44.6}
func guideMessage(b []byte, rng *rand.Rand) []byte {
	b = append(b, `{"pressure": `...)
	b = appendTenths(b, rng.IntN(101))
	b = append(b, `, "temperature": `...)
	b = appendTenths(b, rng.IntN(1001))
	b = append(b, `, "visibility": `...)
	b = appendTenths(b, rng.IntN(1001))
	return append(b, '}')
}

// nestedMessage is a buoy report of about 700 bytes: nested objects, an
// array of objects, numbers, strings and a boolean. Telegraf's JSON parser
// flattens it into one metric of about 30 fields (device_site_lat,
// sensors_0_stats_avg, history_3, ...) and drops the strings, so it costs
// far more per message than the guide's three numbers.
func nestedMessage(b []byte, rng *rand.Rand) []byte {
	b = append(b, `{"device": {"id": "buoy-`...)
	b = strconv.AppendInt(b, int64(rng.IntN(1000)), 10)
	b = append(b, `", "model": "OCN-7", "firmware": "3.14.2", "site": {"name": "harbor-east", "lat": 31.`...)
	b = strconv.AppendInt(b, int64(1000+rng.IntN(9000)), 10)
	b = append(b, `, "lon": 121.`...)
	b = strconv.AppendInt(b, int64(1000+rng.IntN(9000)), 10)
	b = append(b, `, "depth_m": `...)
	b = appendTenths(b, rng.IntN(500))
	b = append(b, `}}, "status": {"battery_pct": `...)
	b = appendTenths(b, rng.IntN(1001))
	b = append(b, `, "uptime_s": `...)
	b = strconv.AppendInt(b, int64(rng.IntN(10_000_000)), 10)
	b = append(b, `, "online": true, "errors": `...)
	b = strconv.AppendInt(b, int64(rng.IntN(3)), 10)
	b = append(b, `, "signal": {"rssi": -`...)
	b = strconv.AppendInt(b, int64(40+rng.IntN(60)), 10)
	b = append(b, `, "snr": `...)
	b = appendTenths(b, rng.IntN(300))
	b = append(b, `}}, "sensors": [`...)
	for i, kind := range [...]string{"pressure", "temperature", "visibility"} {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, `{"type": "`...)
		b = append(b, kind...)
		b = append(b, `", "value": `...)
		b = appendTenths(b, rng.IntN(1001))
		b = append(b, `, "stats": {"min": `...)
		b = appendTenths(b, rng.IntN(300))
		b = append(b, `, "max": `...)
		b = appendTenths(b, 700+rng.IntN(300))
		b = append(b, `, "avg": `...)
		b = appendTenths(b, 300+rng.IntN(400))
		b = append(b, `, "samples": `...)
		b = strconv.AppendInt(b, int64(rng.IntN(1000)), 10)
		b = append(b, `}}`...)
	}
	b = append(b, `], "history": [`...)
	for i := range 6 {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendTenths(b, rng.IntN(1001))
	}
	return append(b, "]}"...)
}

// appendTenths writes tenths/10 with exactly one decimal, as Python
// prints round(x, 1).
func appendTenths(b []byte, tenths int) []byte {
	b = strconv.AppendInt(b, int64(tenths/10), 10)
	return append(b, '.', byte('0'+tenths%10))
}
