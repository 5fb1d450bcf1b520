#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from spec-vectors/, into
fuzz/corpus/<target>/ (ignored by git): the vectors' headers, tokens,
documents and whole requests, in the input format each target reads."""

import hashlib
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec-vectors"
CORPUS = ROOT / "fuzz" / "corpus"


def load(name):
    return json.loads((VECTORS / name).read_text())["cases"]


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ("seed-" + hashlib.sha256(data).hexdigest()[:16])).write_bytes(data)


def header(headers, name):
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def requests():
    for file in ("requests.json", "negative.json", "signature-bases.json"):
        for case in load(file):
            request = case.get("request")
            if request and "headers" in request:
                yield request


def main():
    for case in load("signature-key.json"):
        if case.get("header"):
            write("signature_key", case["header"])
    for case in load("agent-auth.json"):
        if case.get("header"):
            write("agent_auth", case["header"])
    for case in load("token-requests.json"):
        write("token_request", case["body"])
    for case in load("content-digest.json"):
        if case.get("header") is not None:
            write("content_digest", case["header"] + "\n" + (case.get("body") or ""))
    kinds = {"agent+jwt": 0, "resource+jwt": 1, "auth+jwt": 2}
    for request in requests():
        headers = request["headers"]
        signature_input = header(headers, "signature-input") or ""
        signature = header(headers, "signature") or ""
        write("signature_input", signature_input + "\n" + signature)
        key = header(headers, "signature-key") or ""
        if key:
            write("signature_key", key)
        for token in re.findall(r'jwt="([^"]+)"', key):
            write("compact_jws", token)
            try:
                import base64
                head = token.split(".")[0]
                typ = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("typ")
            except Exception:
                typ = None
            write("tokens", bytes([kinds.get(typ, 0)]) + token.encode())
        lines = [f"{request['method']} {request['target']}"]
        lines += [f"{name}: {value}" for name, value in headers]
        text = "\n".join(lines)
        if request.get("body") is not None:
            text += "\n\n" + request["body"]
        write("verify_request", text)
    documents = json.loads((VECTORS / "directory.json").read_text())["documents"]
    for url, document in documents.items():
        if url.endswith("/.well-known/aauth-agent"):
            choice = 0
        elif url.endswith("/.well-known/aauth-issuer"):
            choice = 1
        elif url.endswith("/.well-known/aauth-resource"):
            choice = 2
        else:
            choice = 3
        write("metadata", bytes([choice]) + json.dumps(document).encode())
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(f"fuzz: {target}: {len(list((CORPUS / target).iterdir()))} inputs in its corpus")


if __name__ == "__main__":
    main()
