"""Prints the X-Twilio-Signature that Twilio would send for a form POST, so webhooks can be
tried by hand against `make dev`:

    .venv/bin/python scripts/sign.py URL [name=value ...]

The auth token is $TWILIO_AUTH_TOKEN, or `make dev`'s local default.
"""

import os
import sys

from twilio.request_validator import RequestValidator


class Params(dict):
    """Repeated names, the way the helper library reads Django's QueryDict."""

    def getlist(self, name):
        return self[name]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    url, pairs = argv[1], argv[2:]
    params = Params()
    for pair in pairs:
        name, _, value = pair.partition("=")
        params.setdefault(name, []).append(value)
    token = os.environ.get("TWILIO_AUTH_TOKEN", "local-auth-token")
    print(RequestValidator(token).compute_signature(url, params))


if __name__ == "__main__":
    main(sys.argv)
