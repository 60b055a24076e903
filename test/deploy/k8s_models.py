"""Reads a multi-document YAML stream on stdin and deserialises every object into its model
class of the upstream Python client (Debian's python3-kubernetes). The client checks required
fields and enum values while it builds the models, and drops fields it does not know, so the
object serialised back must equal the input. Prints one line per object: OK or the problem."""
import json
import sys

import yaml
from kubernetes import client

api = client.ApiClient()
status = 0
for doc in yaml.safe_load_all(sys.stdin):
    name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        obj = api._ApiClient__deserialize(doc, f"V1{doc['kind']}")
        back = api.sanitize_for_serialization(obj)
        if back != doc:
            raise ValueError("changed by a round trip (unknown fields?): " + json.dumps(back, sort_keys=True))
        print(f"OK {name}")
    except Exception as e:  # report every object, not just the first failure
        status = 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")
sys.exit(status)
