#!/usr/bin/env python3
"""The guide's sensor producer, fixed so that it runs.

Sends JSON messages such as {"pressure": 3.2, "temperature": 45.1,
"visibility": 78.0} to a Kafka topic with kafka-python, one every --interval.
Fixes to the guide's copy: random_temp_cels -> random_temperature, rang ->
range, the placeholder address 'ip:9092' -> --bootstrap-server, and a flush
before exit so that the last message is not lost.

    producer.py [--bootstrap-server 127.0.0.1:9092] [--topic oceanic]
                [--count 2000] [--interval 5s] [--quiet]

Needs: pip install kafka-python (scripts/demo.sh installs it into a venv).
"""

import argparse
import json
import random
import re
import sys
import time

from kafka import KafkaProducer


def random_pressure():
    return round(random.uniform(0, 10), 1)


def random_temperature():
    return round(random.uniform(0, 100), 1)


def random_visibility():
    return round(random.uniform(0, 100), 1)


def get_json_data():
    data = {}

    data["pressure"] = random_pressure()
    data["temperature"] = random_temperature()
    data["visibility"] = random_visibility()

    return json.dumps(data)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text):
    """Seconds from '5', '5s', '0.2s', '200ms' or '1m' (Go-style, as the demo passes them)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 5s, 0.2s, 200ms)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Send the guide's sensor messages to Kafka.")
    parser.add_argument("--bootstrap-server", default="127.0.0.1:9092",
                        help="Kafka broker host:port (default %(default)s, as in the guide)")
    parser.add_argument("--topic", default="oceanic", help="topic (default %(default)s)")
    parser.add_argument("--count", type=non_negative_int, default=2000,
                        help="messages to send (default %(default)s, as in the guide)")
    parser.add_argument("--interval", type=duration, default=5.0,
                        help="pause between messages, e.g. 5s, 0.2s, 0 (default 5s, as in the guide)")
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # kafka-python finds the broker's protocol versions itself (ApiVersions)
    # and picks ones Kafka 4.x still serves; no api_version pin is needed with
    # the kafka-python version scripts/demo.sh installs.
    producer = KafkaProducer(bootstrap_servers=[args.bootstrap_server])

    started = time.monotonic()
    try:
        for i in range(args.count):
            json_data = get_json_data()
            producer.send(args.topic, bytes(f"{json_data}", "UTF-8"))
            if not args.quiet:
                print(f"Sensor data is sent: {json_data}", flush=True)
            if args.interval > 0 and i + 1 < args.count:
                time.sleep(args.interval)
        # send() only queues: wait until the broker has every message.
        producer.flush()
    finally:
        producer.close()
    elapsed = time.monotonic() - started
    print(f"sent {args.count} messages to {args.topic} in {elapsed:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
