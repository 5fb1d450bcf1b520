#!/usr/bin/env python3
"""The other side of the RFC 9421 differential test: the PyPI package
http-message-signatures (3.0.0, pinned in interop/requirements.txt), an
implementation written apart from this project.

Reads {"cases": [...]} on standard input. Each case is a request (method,
url, header lines), the covered component identifiers, `created`, a label,
an Ed25519 private key (base64url d), and this project's Signature-Input
and Signature for it. For each, writes the package's signature base and
signature for the same components and parameters, and whether the package
verifies this project's signature. Prints {"results": [...]}.
"""

import base64
import datetime
import json
import sys
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, algorithms
from http_message_signatures.resolvers import MappingKeyResolver


class Headers:
    """Header field lines, repeated names kept in order."""

    def __init__(self, lines):
        self.lines = [(name, value) for name, value in lines]

    def items(self):
        return list(self.lines)

    def __iter__(self):
        return iter(dict.fromkeys(name for name, _ in self.lines))

    def __contains__(self, name):
        return any(n.lower() == name.lower() for n, _ in self.lines)

    def __getitem__(self, name):
        values = [v for n, v in self.lines if n.lower() == name.lower()]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __setitem__(self, name, value):
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()] + [(name, value)]

    def __delitem__(self, name):
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()]


@dataclass
class Message:
    method: str
    url: str
    headers: Headers


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def one(case):
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(case["d"]))
    resolver = MappingKeyResolver(public_keys={"k": key.public_key()}, private_keys={"k": key})
    result = {}
    try:
        signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
        prepared = signer.prepare(
            Message(case["method"], case["url"], Headers(case["headers"])),
            key_id="k",
            created=datetime.datetime.fromtimestamp(case["created"], tz=datetime.timezone.utc),
            label=case["label"],
            include_alg=False,
            covered_component_ids=case["components"],
        )
        signature = key.sign(prepared.signature_base)
        result["base"] = prepared.signature_base.decode()
        result["signature_input"] = f'{case["label"]}={prepared.signature_params}'
        result["signature"] = f'{case["label"]}=:{base64.b64encode(signature).decode()}:'
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    try:
        lines = list(case["headers"]) + [
            ("Signature-Input", case["ours_signature_input"]),
            ("Signature", case["ours_signature"]),
        ]
        verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
        verifier.verify(Message(case["method"], case["url"], Headers(lines)), max_age=None)
        result["verifies_ours"] = True
    except Exception as error:
        result["verifies_ours"] = False
        result["verify_error"] = f"{type(error).__name__}: {error}"
    return result


def main():
    cases = json.load(sys.stdin)["cases"]
    json.dump({"results": [one(case) for case in cases]}, sys.stdout)


if __name__ == "__main__":
    main()
